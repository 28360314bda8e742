//! The checks of one sale item, as a pure function of what was read from Redis and MySQL, so
//! each rule is unit-tested without servers. `redis_side` holds the rules over Redis's state
//! (and what MySQL says of it), `mysql_side` the rules over MySQL alone.
//!
//! The lifecycle in the rules: orders `pending_payment` and `paid` hold their units; `cancelled`
//! and `expired` orders gave them back, to MySQL's stock in their transaction and to Redis's by
//! `release.v4` (the `released` hash, its total kept in meta); `rejected` never held any.

pub(crate) mod counters;
mod mysql_side;
mod redis_side;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use serde::Serialize;
use uuid::Uuid;

use crate::stores::mysql::orders::holds_units;

/// Sample ids listed per failing check; enough to start an investigation.
pub(crate) const SAMPLE_IDS: usize = 20;

/// One reservation in the Redis ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerEntry {
    /// Order id.
    pub order_id: Uuid,
    /// Buyer (shared with every other entry and order of the same buyer).
    pub user_id: Arc<str>,
    /// Units.
    pub quantity: u32,
    /// Reservation time, Unix ms.
    pub reserved_at_ms: i64,
}

/// One order row as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderFact {
    /// Order id.
    pub order_id: Uuid,
    /// Buyer (shared, as in [`LedgerEntry`]).
    pub user_id: Arc<str>,
    /// Units.
    pub quantity: u32,
    /// `pending_payment`, `paid`, `cancelled`, `expired` or `rejected` (shared).
    pub status: Arc<str>,
    /// Reservation time, Unix ms.
    pub reserved_at_ms: i64,
    /// True once Redis took its units back (closed orders).
    pub released: bool,
}

/// Everything read about one item.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemFacts {
    /// Units put on sale (MySQL).
    pub initial_stock: i64,
    /// Per-user limit (MySQL).
    pub per_user_limit: i64,
    /// MySQL-side remaining units.
    pub mysql_stock: i64,
    /// Redis remaining units read before the ledger; `None` when the key is missing.
    pub redis_remaining: Option<i64>,
    /// Redis remaining units read again after the ledger. Buys landing while the ledger is
    /// read make it lower; without them it equals `redis_remaining`.
    pub redis_remaining_after: Option<i64>,
    /// Units Redis had given back (meta `released_units`), read with `redis_remaining`.
    pub redis_released_before: i64,
    /// The same, read with `redis_remaining_after`.
    pub redis_released_after: i64,
    /// Ledger entries that parsed.
    pub ledger: Vec<LedgerEntry>,
    /// Ledger fields that did not parse.
    pub unreadable_ledger: Vec<String>,
    /// The buyers hash (user -> units).
    pub buyers: HashMap<String, i64>,
    /// Redis's record of released orders (order -> units).
    pub released: HashMap<Uuid, u32>,
    /// MySQL orders of the item.
    pub orders: Vec<OrderFact>,
    /// False when the ledger is gone (expired with the sale): ledger-based checks are skipped.
    pub ledger_available: bool,
    /// Whether the item's Redis state is there and belongs to this sale.
    pub redis_state: RedisState,
}

/// What reconciliation found of an item's Redis state (meta), before reading the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum RedisState {
    /// Present, and (from script v3 on) stamped with this sale's uid.
    #[default]
    Present,
    /// Gone, although the sale was warmed and its keys should live until end + grace: lost.
    Lost,
    /// Gone after end + grace, as expected.
    Expired,
    /// Being rebuilt from MySQL.
    Rebuilding,
    /// Stamped with another sale's uid.
    Foreign,
    /// Written by a script version this release does not run: an ended sale's keys, waiting
    /// to expire. Releases since the upgrade went to MySQL only, so Redis is not compared.
    Retired,
}

/// One check: ok, or a discrepancy with a count and sample ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    /// Stable name (`stock_balance`, `ledger_persisted`, ...).
    pub name: &'static str,
    /// True when the rule holds.
    pub ok: bool,
    /// The figures behind the verdict.
    pub detail: String,
    /// How many things are wrong (0 when ok).
    pub count: u64,
    /// Up to [`SAMPLE_IDS`] ids (orders or users) to look at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample_ids: Vec<String>,
}

impl Check {
    fn pass(name: &'static str, detail: String) -> Self {
        Self {
            name,
            ok: true,
            detail,
            count: 0,
            sample_ids: Vec::new(),
        }
    }

    fn fail(name: &'static str, detail: String, ids: Vec<String>) -> Self {
        let count = ids.len().max(1) as u64;
        Self {
            name,
            ok: false,
            detail,
            count,
            sample_ids: ids.into_iter().take(SAMPLE_IDS).collect(),
        }
    }

    fn verdict(name: &'static str, ok: bool, detail: String, ids: Vec<String>) -> Self {
        if ok {
            Self::pass(name, detail)
        } else {
            Self::fail(name, detail, ids)
        }
    }
}

/// Units per user, for a set of (user, quantity) pairs.
fn per_user<'a>(pairs: impl Iterator<Item = (&'a str, u32)>) -> BTreeMap<&'a str, i64> {
    let mut totals = BTreeMap::new();
    for (user, qty) in pairs {
        *totals.entry(user).or_insert(0) += i64::from(qty);
    }
    totals
}

/// Ledger entries older than the grace period that have no MySQL row: the candidates for repair.
pub(crate) fn missing_in_mysql(facts: &ItemFacts, now_ms: i64, grace_ms: i64) -> Vec<Uuid> {
    let in_mysql: HashSet<Uuid> = facts.orders.iter().map(|o| o.order_id).collect();
    facts
        .ledger
        .iter()
        .filter(|e| e.reserved_at_ms <= now_ms - grace_ms && !in_mysql.contains(&e.order_id))
        .map(|e| e.order_id)
        .collect()
}

/// The orders of an item that hold units (`pending_payment`, `paid`).
fn holding(facts: &ItemFacts) -> impl Iterator<Item = &OrderFact> {
    facts.orders.iter().filter(|o| holds_units(&o.status))
}

/// The verdict on an item's Redis state, when it is not simply there (or expired as it should).
pub(crate) fn state_check(state: RedisState) -> Option<Check> {
    match state {
        RedisState::Present | RedisState::Expired => None,
        RedisState::Retired => Some(Check::pass(
            "redis_state_present",
            "the item's Redis keys were written by a script version this release does not run (an ended sale's keys, expiring with it); units released since the upgrade went back in MySQL only, so Redis is not compared".to_string(),
        )),
        RedisState::Lost => Some(Check::fail(
            "redis_state_present",
            "the item's Redis state is missing although the sale's keys should live until its end + grace: lost (a Redis restarted empty?); recovery rebuilds it from MySQL".to_string(),
            Vec::new(),
        )),
        RedisState::Rebuilding => Some(Check::fail(
            "redis_state_present",
            "the item's Redis state is being rebuilt from MySQL".to_string(),
            Vec::new(),
        )),
        RedisState::Foreign => Some(Check::fail(
            "redis_state_identity",
            "the item's Redis keys hold another sale's state (another database sharing this Redis and key prefix?); nothing of it was read".to_string(),
            Vec::new(),
        )),
    }
}

/// Runs every check on one item.
pub(crate) fn check_item(facts: &ItemFacts, now_ms: i64, grace_ms: i64) -> Vec<Check> {
    let mut checks: Vec<Check> = state_check(facts.redis_state).into_iter().collect();
    if facts.ledger_available {
        checks.push(redis_side::stock_balance(facts));
        checks.push(redis_side::ledger_readable(facts));
    }
    checks.push(mysql_side::persisted_within_stock(facts));
    checks.push(mysql_side::mysql_stock_balance(facts));
    if facts.ledger_available {
        checks.push(redis_side::user_limit(facts, now_ms, grace_ms));
    }
    checks.push(mysql_side::user_limit(facts));
    checks.push(mysql_side::no_rejected_orders(facts));
    if facts.ledger_available {
        checks.push(redis_side::ledger_persisted(facts, now_ms, grace_ms));
        checks.push(redis_side::no_orphan_orders(facts));
        checks.push(redis_side::released_match(facts));
        checks.push(redis_side::paid_never_released(facts));
    }
    checks.push(mysql_side::no_duplicate_orders(facts));
    checks
}
