//! After a verified buy run: pay a share of the reservations as the payment provider would
//! (signed notifications), let the others' payment windows pass, and check that every order
//! ended paid or expired, the expired units are back in stock, and the report is clean.

use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::args::Args;

/// How the lifecycle step went.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleReport {
    /// Orders paid by this step.
    pub paid: u64,
    /// Orders left to expire.
    pub left_to_expire: u64,
    /// Final counts per state, summed over the sale's items.
    pub states: Value,
    /// Units back in MySQL's stock and Redis's.
    pub stock_mysql: i64,
    /// Units back in Redis.
    pub stock_redis: Option<i64>,
    /// True when everything adds up and the report is clean.
    pub ok: bool,
    /// What did not.
    pub problems: Vec<String>,
    /// The reconciliation report taken after the lifecycle.
    #[serde(skip)]
    pub report: Value,
}

/// The `X-Signature` of `body` signed with `secret` now: `t=<unix seconds>,v1=<hex
/// HMAC-SHA256 of "<t>.<body>">`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    sign_at(secret, t, body)
}

/// The `X-Signature` of `body` signed with `secret` at Unix second `t`.
fn sign_at(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Pays `share` of `order_ids` (100 cents each, the loadtest item's price), waits for the rest
/// to expire (up to the window plus a minute), and judges.
///
/// # Errors
/// The service could not be reached.
pub async fn pay_and_expire(
    http: &reqwest::Client,
    a: &Args,
    sale: u64,
    order_ids: &[String],
    share: f64,
) -> anyhow::Result<LifecycleReport> {
    let to_pay = ((order_ids.len() as f64) * share).round() as usize;
    let mut paid = 0u64;
    for chunk in order_ids[..to_pay].chunks(32) {
        let answers = futures::future::join_all(chunk.iter().map(|id| pay(http, a, id))).await;
        paid += answers
            .into_iter()
            .filter(|ok| matches!(ok, Ok(true)))
            .count() as u64;
    }
    let left = (order_ids.len() - to_pay) as u64;
    let window = a.payment_window_secs.unwrap_or(900);
    let deadline = Instant::now() + Duration::from_secs(window + 60);
    let mut last_note = Instant::now();
    let view = loop {
        let view: Value = http
            .get(format!("{}/admin/v1/sales/{sale}", a.admin_url))
            .bearer_auth(&a.admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let pending = sum(&view, "pending_orders");
        if pending == 0 || Instant::now() >= deadline {
            break view;
        }
        if last_note.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "lifecycle   waiting for {pending} unpaid orders to expire (window {window} s)"
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let report: Value = http
        .post(format!("{}/admin/v1/sales/{sale}/reconcile", a.admin_url))
        .bearer_auth(&a.admin_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("reconciling after the lifecycle")?;
    let states = json!({
        "paid": sum(&view, "paid_orders"),
        "pending_payment": sum(&view, "pending_orders"),
        "cancelled": sum(&view, "cancelled_orders"),
        "expired": sum(&view, "expired_orders"),
        "rejected": sum(&view, "rejected_orders"),
    });
    let stock_mysql: i64 = view["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["stock"].as_i64()).sum())
        .unwrap_or(0);
    let stock_redis = view["items"][0]["redis_remaining"].as_i64();
    let mut problems = Vec::new();
    if paid != to_pay as u64 {
        problems.push(format!("{paid} of {to_pay} payments were accepted"));
    }
    if states["paid"] != json!(paid) {
        problems.push(format!(
            "{} orders paid, {paid} payments accepted",
            states["paid"]
        ));
    }
    if states["expired"] != json!(left) || states["pending_payment"] != json!(0) {
        problems.push(format!(
            "{left} unpaid orders should have expired: {states}"
        ));
    }
    if report["ok"] != json!(true) {
        problems.push("the reconciliation report after the lifecycle is not clean".into());
    }
    Ok(LifecycleReport {
        paid,
        left_to_expire: left,
        states,
        stock_mysql,
        stock_redis,
        ok: problems.is_empty(),
        problems,
        report,
    })
}

fn sum(view: &Value, field: &str) -> u64 {
    view["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i[field].as_u64()).sum())
        .unwrap_or(0)
}

/// One signed payment notification; true when the order is paid. A 409 `not_persisted` is
/// retried (the order is on its way to MySQL).
async fn pay(http: &reqwest::Client, a: &Args, order_id: &str) -> anyhow::Result<bool> {
    let body = json!({
        "order_id": order_id,
        "amount_cents": 100,
        "provider_ref": format!("loadtest-{order_id}"),
    })
    .to_string();
    for _ in 0..20 {
        let r = http
            .post(format!("{}/payments/v1/notify", a.base_url))
            .header("x-signature", sign(&a.payment_secret, body.as_bytes()))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        match (status, answer["code"].as_str()) {
            (200, _) => return Ok(true),
            (409, Some("not_persisted")) => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => return Ok(false),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_time_and_the_body() {
        // HMAC-SHA256 of "1700000000.what do ya want for nothing?" under the key "Jefe"
        // (RFC 4231 case 2's key and message, behind the timestamp), as openssl computes it.
        assert_eq!(
            sign_at("Jefe", 1_700_000_000, b"what do ya want for nothing?"),
            "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signed = sign("Jefe", b"x");
        let t: u64 = signed
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("t=<seconds>,...: {signed}"));
        assert!(t.abs_diff(now) < 300, "signed at {t}, now {now}");
    }
}
