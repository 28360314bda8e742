//! After a verified buy run: pay a share of the reservations as the payment provider would
//! (signed notifications), let the others' payment windows pass, and check that every order
//! ended paid or expired, the expired units are back in stock, and the report is clean.

use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::admin::Admin;

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

/// Where the lifecycle step pays and what it watches.
pub(crate) struct PaidSale<'a> {
    /// The admin API, to watch the sale and reconcile it.
    pub(crate) admin: Admin<'a>,
    /// The sale.
    pub(crate) sale: u64,
    /// The buyers' listener, which takes the payment notifications.
    pub(crate) base_url: &'a str,
    /// Signs the notifications.
    pub(crate) payment_secret: &'a str,
    /// The item's payment window, in seconds.
    pub(crate) window_secs: u64,
}

/// Pays `share` of `order_ids` (100 cents each, the loadtest item's price), waits for the rest
/// to expire (up to the window plus a minute), and judges.
///
/// # Errors
/// The service could not be reached.
pub(crate) async fn pay_and_expire(
    http: &reqwest::Client,
    target: &PaidSale<'_>,
    order_ids: &[String],
    share: f64,
) -> anyhow::Result<LifecycleReport> {
    let to_pay = ((order_ids.len() as f64) * share).round() as usize;
    let paid = pay_all(http, target, &order_ids[..to_pay]).await;
    let view = wait_expired(target).await?;
    let report = target
        .admin
        .reconcile(target.sale)
        .await
        .context("reconciling after the lifecycle")?;
    let expected = Expected {
        to_pay: to_pay as u64,
        left: (order_ids.len() - to_pay) as u64,
    };
    Ok(tally(expected, paid, &view, report))
}

/// Pays every order of `ids`, 32 at a time; returns how many payments were accepted.
async fn pay_all(http: &reqwest::Client, target: &PaidSale<'_>, ids: &[String]) -> u64 {
    let mut paid = 0u64;
    for chunk in ids.chunks(32) {
        let answers = futures::future::join_all(chunk.iter().map(|id| pay(http, target, id))).await;
        paid += answers
            .into_iter()
            .filter(|ok| matches!(ok, Ok(true)))
            .count() as u64;
    }
    paid
}

/// One signed payment notification; true when the order is paid. A 409 `not_persisted` is
/// retried (the order is on its way to MySQL).
async fn pay(
    http: &reqwest::Client,
    target: &PaidSale<'_>,
    order_id: &str,
) -> anyhow::Result<bool> {
    let body = json!({
        "order_id": order_id,
        "amount_cents": 100,
        "provider_ref": format!("loadtest-{order_id}"),
    })
    .to_string();
    for _ in 0..20 {
        let r = http
            .post(format!("{}/payments/v1/notify", target.base_url))
            .header("x-signature", sign(target.payment_secret, body.as_bytes()))
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

/// The `X-Signature` of `body` signed with `secret` now: `t=<unix seconds>,v1=<hex
/// HMAC-SHA256 of "<t>.<body>">`.
fn sign(secret: &str, body: &[u8]) -> String {
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

/// Polls the sale until no order waits for its payment, or the window plus a minute passed;
/// returns the last view.
async fn wait_expired(target: &PaidSale<'_>) -> anyhow::Result<Value> {
    let window = target.window_secs;
    let deadline = Instant::now() + Duration::from_secs(window + 60);
    let mut last_note = Instant::now();
    loop {
        let view = target.admin.sale(target.sale).await?;
        let pending = sum(&view, "pending_orders");
        if pending == 0 || Instant::now() >= deadline {
            return Ok(view);
        }
        if last_note.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "lifecycle   waiting for {pending} unpaid orders to expire (window {window} s)"
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How the orders should have ended.
#[derive(Clone, Copy)]
struct Expected {
    /// Orders paid.
    to_pay: u64,
    /// Orders left to expire.
    left: u64,
}

/// The step's report from the final view of the sale and the report taken after it.
fn tally(expected: Expected, paid: u64, view: &Value, report: Value) -> LifecycleReport {
    let Expected { to_pay, left } = expected;
    let states = json!({
        "paid": sum(view, "paid_orders"),
        "pending_payment": sum(view, "pending_orders"),
        "cancelled": sum(view, "cancelled_orders"),
        "expired": sum(view, "expired_orders"),
        "rejected": sum(view, "rejected_orders"),
    });
    let stock_mysql: i64 = view["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["stock"].as_i64()).sum())
        .unwrap_or(0);
    let mut problems = Vec::new();
    if paid != to_pay {
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
    LifecycleReport {
        paid,
        left_to_expire: left,
        states,
        stock_mysql,
        stock_redis: view["items"][0]["redis_remaining"].as_i64(),
        ok: problems.is_empty(),
        problems,
        report,
    }
}

/// A field of the sale view, summed over its items.
fn sum(view: &Value, field: &str) -> u64 {
    view["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i[field].as_u64()).sum())
        .unwrap_or(0)
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
        // The service's own vector (its signature module): the same scheme at t = 0.
        assert_eq!(
            sign_at("Jefe", 0, b"what do ya want for nothing?"),
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
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

    /// A one-item view with these orders by state, `stock` units in MySQL and in Redis.
    fn view(paid: u64, pending: u64, expired: u64, stock: i64) -> Value {
        json!({"items": [{"paid_orders": paid, "pending_orders": pending,
            "expired_orders": expired, "cancelled_orders": 0, "rejected_orders": 0,
            "stock": stock, "redis_remaining": stock}]})
    }

    const FIVE: Expected = Expected { to_pay: 3, left: 2 };

    #[test]
    fn paid_and_expired_orders_that_add_up_pass() {
        let r = tally(FIVE, 3, &view(3, 0, 2, 2), json!({"ok": true}));
        assert!(r.ok, "{:?}", r.problems);
        assert_eq!((r.paid, r.left_to_expire), (3, 2));
        assert_eq!(r.states["paid"], 3);
        assert_eq!(r.states["expired"], 2);
        assert_eq!((r.stock_mysql, r.stock_redis), (2, Some(2)));
    }

    #[test]
    fn each_shortfall_is_named() {
        let r = tally(FIVE, 2, &view(2, 1, 2, 2), json!({"ok": false}));
        assert!(!r.ok);
        assert_eq!(r.problems[0], "2 of 3 payments were accepted");
        assert!(
            r.problems[1].starts_with("2 unpaid orders should have expired: "),
            "{:?}",
            r.problems
        );
        assert_eq!(
            r.problems[2],
            "the reconciliation report after the lifecycle is not clean"
        );
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        // More orders paid than payments accepted.
        let r = tally(FIVE, 2, &view(3, 0, 2, 2), json!({"ok": true}));
        assert_eq!(
            r.problems,
            [
                "2 of 3 payments were accepted",
                "3 orders paid, 2 payments accepted"
            ]
        );
    }
}
