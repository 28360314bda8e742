//! `--verify`: after the load, wait for the consumer to drain, then check the promises through
//! the admin API (never by reading the stores directly: this is what an operator sees).
//!
//! The client's own count is the reference: every reservation confirmed to it (a 202 with an
//! order id) is a unit sold. It is compared with the item's stock (more confirmed than stock is
//! an oversell, whatever the stores say), with Redis (ledger and remaining stock) and with
//! MySQL (the units its orders hold or gave back). When the run created the sale it was the
//! only buyer, so the stores must match the client exactly, give or take the requests whose
//! fate the client could not know (timeouts, broken connections, 503 `unconfirmed`); against
//! an existing sale the client's count is a lower bound.

mod promises;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::admin::Admin;

/// What this client saw of one item.
#[derive(Debug, Clone, Default)]
pub struct ClientTally {
    /// The item bought.
    pub item_id: u64,
    /// Reservations confirmed to this client (one unit each).
    pub confirmed: u64,
    /// Their order ids, when collected.
    pub order_ids: Option<Vec<String>>,
    /// Attempts whose reservation may stand although the client was not told.
    pub unknown_fate: u64,
    /// The run created the sale: nobody else bought.
    pub only_client: bool,
}

/// The verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    /// True when every check passed.
    pub ok: bool,
    /// True when the consumer drained before the timeout.
    pub drained: bool,
    /// What failed, in words.
    pub problems: Vec<String>,
    /// Reservations confirmed to this client.
    pub confirmed: u64,
    /// Distinct order ids among them (when collected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_order_ids: Option<u64>,
    /// Reservations in Redis (ledger entries) over all items.
    pub reservations: u64,
    /// Units of persisted orders over all items.
    pub persisted_units: u64,
    /// Persisted orders over all items.
    pub persisted_orders: u64,
    /// Units initially on sale over all items.
    pub stock: u64,
}

/// A figure of the sale view (0 when absent).
fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// True when every item's reservations have all reached MySQL and none waits for Kafka.
fn is_drained(sale: &Value) -> bool {
    sale["items"].as_array().is_some_and(|items| {
        items.iter().all(|i| {
            let stored = [
                "persisted_orders",
                "cancelled_orders",
                "expired_orders",
                "rejected_orders",
            ]
            .iter()
            .map(|f| u(&i[*f]))
            .sum::<u64>();
            i["undelivered"].as_u64() == Some(0) && stored == u(&i["reservations"])
        })
    })
}

/// Waits for the sale to drain, takes a reconciliation report and judges both against what
/// the client saw. Returns the verdict and the report.
///
/// # Errors
/// The admin API failed.
pub async fn verify_sale(
    http: &reqwest::Client,
    admin_url: &str,
    admin_token: &str,
    sale: u64,
    client: &ClientTally,
    drain_timeout: Duration,
) -> anyhow::Result<(Verification, Value)> {
    let admin = Admin::new(http, admin_url, admin_token);
    let (view, drained) = wait_drained(admin, sale, drain_timeout).await?;
    let report = admin.reconcile(sale).await?;
    let verdict = promises::judge(&view, &report, drained, Some(client));
    Ok((verdict, report))
}

/// Polls the sale until drained or `timeout`; returns the last view and whether it drained.
async fn wait_drained(
    admin: Admin<'_>,
    sale: u64,
    timeout: Duration,
) -> anyhow::Result<(Value, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        let view = admin.sale(sale).await?;
        if is_drained(&view) {
            return Ok((view, true));
        }
        if Instant::now() >= deadline {
            return Ok((view, false));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
