//! The sales a crowd goes to: the queued one (created with a waiting room, or the one
//! `--sale` names, which must have one) and, for `--compare-open`, an open one.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::{admin::Admin, args_crowd::CrowdPlan, setup::sale_body};

/// The queued sale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueuedSale {
    /// The sale.
    pub sale: u64,
    /// Its item.
    pub item: u64,
    /// The crowd's clock starts here (right after the sale was created or read).
    pub start: Instant,
    /// From `start` to the sale's start: the pre-queue window (zero once started).
    pub window: Duration,
}

/// How long the admission lasts once granted, in the created sale.
const ADMISSION_TTL_SECS: u64 = 120;

/// The queued sale: created now (`--create-sale`) or the one `--sale` names.
///
/// # Errors
/// The sale could not be created or read, or has no waiting room.
pub(crate) async fn queued(http: &reqwest::Client, plan: &CrowdPlan) -> anyhow::Result<QueuedSale> {
    let a = &plan.args;
    let admin = Admin::new(http, &a.admin_url, &a.admin_token);
    let view = if a.create_sale {
        admin.create(&queued_body(plan, chrono::Utc::now())).await?
    } else {
        admin.sale(a.sale.unwrap_or(0)).await?
    };
    let start = Instant::now();
    anyhow::ensure!(
        view["admission"]["mode"] == "queue",
        "the sale has no waiting room (admission mode queue): {}",
        view["admission"]
    );
    let starts_at = view["starts_at"].as_str().context("the sale's starts_at")?;
    let starts_at = chrono::DateTime::parse_from_rfc3339(starts_at).context("starts_at")?;
    let window = (starts_at.to_utc() - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let item = match a.item {
        Some(item) => item,
        None => view["items"][0]["id"].as_u64().context("item id")?,
    };
    Ok(QueuedSale {
        sale: view["id"].as_u64().context("sale id")?,
        item,
        start,
        window,
    })
}

/// A one-item sale whose queue opens at `now` and which starts `--pre-queue-secs` later.
fn queued_body(plan: &CrowdPlan, now: chrono::DateTime<chrono::Utc>) -> Value {
    let a = &plan.args;
    let c = &a.crowd;
    let mut body = sale_body(a, lasts(plan));
    let starts_at = now + chrono::Duration::seconds(c.pre_queue_secs as i64);
    body["starts_at"] = json!(starts_at.to_rfc3339());
    body["admission"] = json!({
        "mode": "queue",
        "admit_per_sec": c.admit_per_sec,
        "max_active": c.max_active,
        "admission_ttl_secs": ADMISSION_TTL_SECS,
        "queue_opens_at": now.to_rfc3339(),
        "pow_bits": c.pow_bits,
    });
    body
}

/// How long the created sales last: the crowd's deadline and an hour.
fn lasts(plan: &CrowdPlan) -> Duration {
    plan.deadline + Duration::from_secs(3600)
}

/// `--compare-open`: a one-item sale with the same stock, no waiting room, open now.
///
/// # Errors
/// The sale could not be created.
pub(crate) async fn open(http: &reqwest::Client, plan: &CrowdPlan) -> anyhow::Result<(u64, u64)> {
    let a = &plan.args;
    let sale = Admin::new(http, &a.admin_url, &a.admin_token)
        .create_sale(&sale_body(a, lasts(plan)))
        .await?;
    Ok((
        sale["id"].as_u64().context("sale id")?,
        sale["items"][0]["id"].as_u64().context("item id")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_queued_sale_opens_its_queue_now_and_starts_later() {
        let args = crate::Args::try_parse_from(
            "loadtest --queue --create-sale --jwt-secret s --admin-token t --stock 5 \
             --pre-queue-secs 7 --admit-per-sec 50 --max-active 20 --pow-bits 3"
                .split_whitespace(),
        )
        .unwrap();
        let plan = args.crowd_plan().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let body = queued_body(&plan, now);
        assert_eq!(body["starts_at"], "2030-01-01T00:00:07+00:00");
        assert_eq!(body["items"][0]["stock"], 5);
        assert_eq!(
            body["admission"],
            json!({"mode": "queue", "admit_per_sec": 50, "max_active": 20,
                   "admission_ttl_secs": 120, "queue_opens_at": "2030-01-01T00:00:00+00:00",
                   "pow_bits": 3})
        );
    }
}
