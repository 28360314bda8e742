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

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::Value;

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

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// True when every item's reservations have all reached MySQL and none waits for Kafka.
pub fn is_drained(sale: &Value) -> bool {
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

/// Compares the client's count with one item's figures.
fn judge_client(item: &Value, c: &ClientTally, problems: &mut Vec<String>) -> Option<u64> {
    let id = c.item_id;
    let initial = u(&item["initial_stock"]);
    let n = c.confirmed;
    let unknown = c.unknown_fate;
    if n > initial {
        problems.push(format!(
            "item {id}: oversold: {n} reservations confirmed to this client, but the item has {initial} units"
        ));
    }
    let distinct = c.order_ids.as_ref().map(|ids| {
        let set: HashSet<&str> = ids.iter().map(String::as_str).collect();
        if set.len() < ids.len() {
            problems.push(format!(
                "item {id}: {} order ids were confirmed to more than one buy",
                ids.len() - set.len()
            ));
        }
        if (ids.len() as u64) < n {
            problems.push(format!(
                "item {id}: {} reservations were confirmed without an order id",
                n - ids.len() as u64
            ));
        }
        set.len() as u64
    });
    // MySQL: units held by pending and paid orders, plus those cancelled or expired since.
    let persisted = u(&item["persisted_units"]);
    let released = u(&item["released_units"]);
    let mysql = persisted + released;
    if mysql < n {
        problems.push(format!(
            "item {id}: {n} reservations confirmed to this client but MySQL holds {mysql} units ({persisted} persisted + {released} released): {} missing",
            n - mysql
        ));
    } else if c.only_client && mysql > n + unknown {
        problems.push(format!(
            "item {id}: MySQL holds {mysql} units but this client, the only buyer, got {n} confirmed (+{unknown} of unknown fate): {} units nobody was told of",
            mysql - n - unknown
        ));
    }
    // Redis: one ledger entry per reservation, and the stock down by as many units.
    let ledger = u(&item["reservations"]);
    if ledger < n {
        problems.push(format!(
            "item {id}: {n} reservations confirmed to this client but {ledger} in the Redis ledger"
        ));
    } else if c.only_client && ledger > n + unknown {
        problems.push(format!(
            "item {id}: {ledger} reservations in the Redis ledger but this client, the only buyer, got {n} confirmed (+{unknown} of unknown fate)"
        ));
    }
    if let Some(remaining) = item["redis_remaining"].as_i64()
        && released == 0
    {
        let expected = initial as i64 - n as i64;
        if remaining > expected {
            problems.push(format!(
                "item {id}: Redis has {remaining} units left of {initial}, but this client got {n} confirmed: at most {expected} can be left"
            ));
        } else if c.only_client && remaining < expected - unknown as i64 {
            problems.push(format!(
                "item {id}: Redis has {remaining} units left of {initial}, but this client, the only buyer, got {n} confirmed (+{unknown} of unknown fate): {expected} expected"
            ));
        }
    }
    distinct
}

/// Judges a drained sale view and its reconciliation report against what the client saw
/// (`None`: the client's count is not known).
pub fn judge(
    sale: &Value,
    report: &Value,
    drained: bool,
    client: Option<&ClientTally>,
) -> Verification {
    let mut problems = Vec::new();
    let (mut reservations, mut persisted, mut orders, mut stock) = (0, 0, 0, 0);
    let mut distinct_order_ids = None;
    let mut seen_item = false;
    for i in sale["items"].as_array().into_iter().flatten() {
        let id = &i["id"];
        let initial = u(&i["initial_stock"]);
        let reserved_units = i["reserved_units"].as_i64().unwrap_or(0);
        let persisted_units = u(&i["persisted_units"]);
        reservations += u(&i["reservations"]);
        persisted += persisted_units;
        orders += u(&i["persisted_orders"]);
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
        if let Some(c) = client
            && i["id"].as_u64() == Some(c.item_id)
        {
            seen_item = true;
            distinct_order_ids = judge_client(i, c, &mut problems);
        }
    }
    if let Some(c) = client
        && !seen_item
    {
        problems.push(format!("item {} is not in the sale", c.item_id));
    }
    if !drained {
        problems.push("the consumer did not drain in time".into());
    }
    if report["ok"] != Value::Bool(true) {
        let before = problems.len();
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
        if problems.len() == before {
            problems.push("the reconciliation report is not ok".into());
        }
    }
    Verification {
        ok: problems.is_empty(),
        drained,
        problems,
        confirmed: client.map_or(0, |c| c.confirmed),
        distinct_order_ids,
        reservations,
        persisted_units: persisted,
        persisted_orders: orders,
        stock,
    }
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
    let (view, drained) = wait_drained(http, admin_url, admin_token, sale, drain_timeout).await?;
    let report: Value = http
        .post(format!("{admin_url}/admin/v1/sales/{sale}/reconcile"))
        .bearer_auth(admin_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((judge(&view, &report, drained, Some(client)), report))
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

    /// A one-item sale of 10 units with `reserved` reservations, `persisted` of them in MySQL.
    fn view(reservations: u64, persisted: u64, undelivered: u64) -> Value {
        json!({"items": [{"id": 1, "initial_stock": 10, "reserved_units": reservations,
            "redis_remaining": 10 - reservations as i64,
            "reservations": reservations, "persisted_orders": persisted,
            "persisted_units": persisted, "rejected_orders": 0, "released_units": 0,
            "undelivered": undelivered}]})
    }

    fn ok_report() -> Value {
        json!({"ok": true, "items": [{"item_id": 1, "checks": [{"name": "stock_balance", "ok": true, "detail": ""}]}]})
    }

    fn client(confirmed: u64, only: bool) -> ClientTally {
        ClientTally {
            item_id: 1,
            confirmed,
            order_ids: Some((0..confirmed).map(|i| format!("order-{i}")).collect()),
            unknown_fate: 0,
            only_client: only,
        }
    }

    #[test]
    fn a_sale_is_drained_when_every_reservation_is_stored() {
        assert!(is_drained(&view(5, 5, 0)));
        assert!(!is_drained(&view(5, 4, 0)));
        assert!(!is_drained(&view(5, 5, 1)));
        let mut expired = view(5, 3, 0);
        expired["items"][0]["expired_orders"] = json!(2);
        assert!(is_drained(&expired), "expired orders are stored too");
    }

    #[test]
    fn a_clean_drained_run_passes() {
        let v = judge(
            &view(10, 10, 0),
            &ok_report(),
            true,
            Some(&client(10, true)),
        );
        assert!(v.ok, "{v:?}");
        assert_eq!((v.reservations, v.persisted_units, v.stock), (10, 10, 10));
        assert_eq!((v.confirmed, v.distinct_order_ids), (10, Some(10)));
        // Another buyer's reservations are fine when the sale was not ours alone.
        assert!(
            judge(
                &view(10, 10, 0),
                &ok_report(),
                true,
                Some(&client(6, false))
            )
            .ok
        );
    }

    #[test]
    fn the_stores_are_compared_with_what_the_client_was_told() {
        // One order missing in MySQL.
        let v = judge(&view(10, 9, 0), &ok_report(), true, Some(&client(10, true)));
        assert!(!v.ok);
        assert!(
            v.problems
                .iter()
                .any(|p| p
                    .contains("10 reservations confirmed to this client but MySQL holds 9 units")),
            "{v:?}"
        );
        // More in the stores than the only buyer was told of, beyond the unknown ones.
        let v = judge(&view(10, 10, 0), &ok_report(), true, Some(&client(8, true)));
        assert!(
            v.problems.iter().any(|p| p.contains("nobody was told of")),
            "{v:?}"
        );
        let mut unsure = client(8, true);
        unsure.unknown_fate = 2;
        assert!(judge(&view(10, 10, 0), &ok_report(), true, Some(&unsure)).ok);
        // Redis's stock put back behind the ledger's back.
        let mut reset = view(5, 5, 0);
        reset["items"][0]["redis_remaining"] = json!(10);
        let v = judge(&reset, &ok_report(), true, Some(&client(5, true)));
        assert!(
            v.problems
                .iter()
                .any(|p| p.contains("Redis has 10 units left")),
            "{v:?}"
        );
        // More confirmed than stock: an oversell, whatever the stores say.
        let v = judge(
            &view(10, 10, 0),
            &ok_report(),
            true,
            Some(&client(12, false)),
        );
        assert!(v.problems.iter().any(|p| p.contains("oversold")), "{v:?}");
        // One order id answered to two buys.
        let mut twice = client(10, true);
        if let Some(ids) = twice.order_ids.as_mut() {
            ids[1] = ids[0].clone();
        }
        let v = judge(&view(10, 10, 0), &ok_report(), true, Some(&twice));
        assert!(
            v.problems.iter().any(|p| p.contains("more than one buy")),
            "{v:?}"
        );
    }

    #[test]
    fn every_broken_promise_is_named() {
        let v = judge(&view(10, 10, 0), &ok_report(), false, None);
        assert!(!v.ok && v.problems[0].contains("drain"));
        // Reserved and persisted differ, so each problem must name its own figure.
        let mut oversold = view(12, 11, 0);
        oversold["items"][0]["initial_stock"] = json!(10);
        let v = judge(&oversold, &ok_report(), true, None);
        assert!(!v.ok);
        assert_eq!(
            v.problems,
            [
                "item 1: 12 units reserved of 10",
                "item 1: 11 units persisted of 10"
            ],
            "{v:?}"
        );
        let bad = json!({"ok": false, "items": [{"item_id": 1, "checks": [
            {"name": "user_limit_mysql", "ok": false, "detail": "1 users above the limit"}]}]});
        let v = judge(&view(10, 10, 0), &bad, true, None);
        assert!(v.problems[0].contains("user_limit_mysql"), "{v:?}");
        let mut other = client(1, true);
        other.item_id = 99;
        let v = judge(&view(1, 1, 0), &ok_report(), true, Some(&other));
        assert!(
            v.problems[0].contains("item 99 is not in the sale"),
            "{v:?}"
        );
    }
}
