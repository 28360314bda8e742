//! `--verify`: after the load, wait for the consumer to drain, then check the promises through
//! the admin API (never by reading the stores directly: this is what an operator sees).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// The verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    /// True when every check passed.
    pub ok: bool,
    /// True when the consumer drained before the timeout.
    pub drained: bool,
    /// What failed, in words.
    pub problems: Vec<String>,
    /// Reservations in Redis (ledger entries) over all items.
    pub reservations: u64,
    /// Units of persisted orders over all items.
    pub persisted_units: u64,
    /// Units initially on sale over all items.
    pub stock: u64,
}

/// True when every item's reservations have all reached MySQL and none waits for Kafka.
pub fn is_drained(sale: &Value) -> bool {
    sale["items"].as_array().is_some_and(|items| {
        items.iter().all(|i| {
            let reservations = i["reservations"].as_u64().unwrap_or(0);
            let stored = i["persisted_orders"].as_u64().unwrap_or(0)
                + i["rejected_orders"].as_u64().unwrap_or(0);
            i["undelivered"].as_u64() == Some(0) && stored == reservations
        })
    })
}

/// Judges a drained sale view and its reconciliation report. `confirmed` is the number of
/// reservations this run saw confirmed, when the run was the sale's only client.
pub fn judge(sale: &Value, report: &Value, drained: bool, confirmed: Option<u64>) -> Verification {
    let mut problems = Vec::new();
    let (mut reservations, mut persisted, mut stock) = (0, 0, 0);
    for i in sale["items"].as_array().into_iter().flatten() {
        let id = &i["id"];
        let initial = i["initial_stock"].as_u64().unwrap_or(0);
        let reserved_units = i["reserved_units"].as_i64().unwrap_or(0);
        let persisted_units = i["persisted_units"].as_u64().unwrap_or(0);
        reservations += i["reservations"].as_u64().unwrap_or(0);
        persisted += persisted_units;
        stock += initial;
        if reserved_units < 0 || reserved_units as u64 > initial {
            problems.push(format!(
                "item {id}: {reserved_units} units reserved of {initial}"
            ));
        }
        if persisted_units > initial {
            problems.push(format!(
                "item {id}: {persisted_units} units persisted of {initial}"
            ));
        }
    }
    if !drained {
        problems.push("the consumer did not drain in time".into());
    }
    if let Some(n) = confirmed
        && n != reservations
    {
        problems.push(format!(
            "{n} reservations confirmed to clients but {reservations} in the ledger"
        ));
    }
    if report["ok"] != Value::Bool(true) {
        for item in report["items"].as_array().into_iter().flatten() {
            for c in item["checks"].as_array().into_iter().flatten() {
                if c["ok"] == Value::Bool(false) {
                    problems.push(format!(
                        "item {}: check {} failed: {}",
                        item["item_id"], c["name"], c["detail"]
                    ));
                }
            }
        }
        if problems.is_empty() {
            problems.push("the reconciliation report is not ok".into());
        }
    }
    Verification {
        ok: problems.is_empty(),
        drained,
        problems,
        reservations,
        persisted_units: persisted,
        stock,
    }
}

/// Polls the sale until drained or `timeout`; returns the last view and whether it drained.
///
/// # Errors
/// The admin API failed.
pub async fn wait_drained(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sale: u64,
    timeout: Duration,
) -> anyhow::Result<(Value, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        let view: Value = http
            .get(format!("{base}/admin/v1/sales/{sale}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if is_drained(&view) {
            return Ok((view, true));
        }
        if Instant::now() >= deadline {
            return Ok((view, false));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(reservations: u64, persisted: u64, undelivered: u64) -> Value {
        json!({"items": [{"id": 1, "initial_stock": 10, "reserved_units": reservations,
            "reservations": reservations, "persisted_orders": persisted,
            "persisted_units": persisted, "rejected_orders": 0, "undelivered": undelivered}]})
    }

    fn ok_report() -> Value {
        json!({"ok": true, "items": [{"item_id": 1, "checks": [{"name": "stock_balance", "ok": true, "detail": ""}]}]})
    }

    #[test]
    fn a_sale_is_drained_when_every_reservation_is_stored() {
        assert!(is_drained(&view(5, 5, 0)));
        assert!(!is_drained(&view(5, 4, 0)));
        assert!(!is_drained(&view(5, 5, 1)));
    }

    #[test]
    fn a_clean_drained_run_passes() {
        let v = judge(&view(10, 10, 0), &ok_report(), true, Some(10));
        assert!(v.ok, "{v:?}");
        assert_eq!((v.reservations, v.persisted_units, v.stock), (10, 10, 10));
    }

    #[test]
    fn every_broken_promise_is_named() {
        let v = judge(&view(10, 10, 0), &ok_report(), false, None);
        assert!(!v.ok && v.problems[0].contains("drain"));
        let v = judge(&view(10, 10, 0), &ok_report(), true, Some(9));
        assert!(!v.ok && v.problems[0].contains("9 reservations confirmed"));
        let mut oversold = view(11, 11, 0);
        oversold["items"][0]["initial_stock"] = json!(10);
        let v = judge(&oversold, &ok_report(), true, None);
        assert_eq!(v.problems.len(), 2, "{v:?}");
        let bad = json!({"ok": false, "items": [{"item_id": 1, "checks": [
            {"name": "user_limit_mysql", "ok": false, "detail": "1 users above the limit"}]}]});
        let v = judge(&view(10, 10, 0), &bad, true, None);
        assert!(v.problems[0].contains("user_limit_mysql"), "{v:?}");
    }
}
