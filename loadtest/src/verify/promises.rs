//! The promises a drained sale must keep, judged from its view and its reconciliation report:
//! no item reserved or persisted beyond its stock, and, for the item this client bought, the
//! stores hold what the client was confirmed (exactly, when it was the only buyer).

use std::collections::HashSet;

use serde_json::Value;

use super::{ClientTally, Verification, u};

/// Judges a drained sale view and its reconciliation report against what the client saw
/// (`None`: the client's count is not known).
pub(crate) fn judge(
    sale: &Value,
    report: &Value,
    drained: bool,
    client: Option<&ClientTally>,
) -> Verification {
    let mut problems = Vec::new();
    let mut totals = Totals::default();
    let mut distinct_order_ids = None;
    let mut seen_item = false;
    for item in sale["items"].as_array().into_iter().flatten() {
        totals.add(item);
        check_within_stock(item, &mut problems);
        if let Some(c) = client
            && item["id"].as_u64() == Some(c.item_id)
        {
            seen_item = true;
            distinct_order_ids = judge_client(item, c, &mut problems);
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
    check_report(report, &mut problems);
    Verification {
        ok: problems.is_empty(),
        drained,
        problems,
        confirmed: client.map_or(0, |c| c.confirmed),
        distinct_order_ids,
        reservations: totals.reservations,
        persisted_units: totals.persisted_units,
        persisted_orders: totals.persisted_orders,
        stock: totals.stock,
    }
}

/// The sale's figures summed over its items.
#[derive(Default)]
struct Totals {
    reservations: u64,
    persisted_units: u64,
    persisted_orders: u64,
    stock: u64,
}

impl Totals {
    fn add(&mut self, item: &Value) {
        self.reservations += u(&item["reservations"]);
        self.persisted_units += u(&item["persisted_units"]);
        self.persisted_orders += u(&item["persisted_orders"]);
        self.stock += u(&item["initial_stock"]);
    }
}

/// No item has more units reserved (in Redis) or persisted (in MySQL) than its stock.
fn check_within_stock(item: &Value, problems: &mut Vec<String>) {
    let id = &item["id"];
    let initial = u(&item["initial_stock"]);
    let reserved_units = item["reserved_units"].as_i64().unwrap_or(0);
    let persisted_units = u(&item["persisted_units"]);
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

/// Compares the client's count with one item's figures; returns how many distinct order ids
/// the client was confirmed, when it collected them.
fn judge_client(item: &Value, c: &ClientTally, problems: &mut Vec<String>) -> Option<u64> {
    let initial = u(&item["initial_stock"]);
    if c.confirmed > initial {
        problems.push(format!(
            "item {}: oversold: {} reservations confirmed to this client, but the item has {initial} units",
            c.item_id, c.confirmed
        ));
    }
    let distinct = c
        .order_ids
        .as_ref()
        .map(|ids| check_order_ids(ids, c, problems));
    check_mysql(item, c, problems);
    check_ledger(item, c, problems);
    check_remaining(item, c, problems);
    distinct
}

/// Every confirmed reservation came with its own order id; returns how many distinct ones.
fn check_order_ids(ids: &[String], c: &ClientTally, problems: &mut Vec<String>) -> u64 {
    let (id, n) = (c.item_id, c.confirmed);
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
}

/// MySQL: units held by pending and paid orders, plus those cancelled or expired since.
fn check_mysql(item: &Value, c: &ClientTally, problems: &mut Vec<String>) {
    let (id, n, unknown) = (c.item_id, c.confirmed, c.unknown_fate);
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
}

/// Redis: one ledger entry per reservation.
fn check_ledger(item: &Value, c: &ClientTally, problems: &mut Vec<String>) {
    let (id, n, unknown) = (c.item_id, c.confirmed, c.unknown_fate);
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
}

/// Redis: the stock down by as many units as were confirmed (while none was released).
fn check_remaining(item: &Value, c: &ClientTally, problems: &mut Vec<String>) {
    let (id, n, unknown) = (c.item_id, c.confirmed, c.unknown_fate);
    let initial = u(&item["initial_stock"]);
    let Some(remaining) = item["redis_remaining"].as_i64() else {
        return;
    };
    if u(&item["released_units"]) != 0 {
        return;
    }
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

/// The reconciliation report's failed checks, or a word that it is not ok.
fn check_report(report: &Value, problems: &mut Vec<String>) {
    if report["ok"] == Value::Bool(true) {
        return;
    }
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
