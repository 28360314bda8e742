//! Rules over an item's Redis state, alone and against MySQL.

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::{Check, ItemFacts, missing_in_mysql, per_user};
use crate::stores::mysql::orders::{STATUS_PAID, STATUS_PENDING, released_units};

/// `initial == remaining + ledger - released`. The ledger was read between two reads of the
/// stock, each taken together with the released total (one atomic read). A reservation lowers
/// the stock and adds its entry in one step, a release raises the stock and the released total
/// in one step, and ledger entries are never removed, so with `A = stock - released` a
/// consistent store satisfies `A_after + ledger <= initial <= A_before + ledger`; with nothing
/// landing in between, both bounds meet and the check is exact.
pub(super) fn stock_balance(facts: &ItemFacts) -> Check {
    let ledger_units: i64 = facts.ledger.iter().map(|e| i64::from(e.quantity)).sum();
    let (ok, detail) = match (facts.redis_remaining, facts.redis_remaining_after) {
        (Some(before), Some(after)) => {
            let a_before = before - facts.redis_released_before;
            let a_after = after - facts.redis_released_after;
            let ok = a_after + ledger_units <= facts.initial_stock
                && facts.initial_stock <= a_before + ledger_units;
            let released = facts.redis_released_before;
            let detail = if a_before == a_after {
                format!(
                    "initial {} vs redis remaining {before} + reserved {ledger_units} - released {released} = {}",
                    facts.initial_stock,
                    a_before + ledger_units
                )
            } else {
                format!(
                    "initial {} vs redis remaining - released {a_after}..{a_before} (buys or releases landed while reading) + reserved {ledger_units} = {}..{}",
                    facts.initial_stock,
                    a_after + ledger_units,
                    a_before + ledger_units
                )
            };
            (ok, detail)
        }
        _ => (false, "the Redis stock key is missing".to_string()),
    };
    Check::verdict("stock_balance", ok, detail, Vec::new())
}

/// Every ledger field parses as a reservation.
pub(super) fn ledger_readable(facts: &ItemFacts) -> Check {
    let unreadable = facts.unreadable_ledger.clone();
    Check::verdict(
        "ledger_readable",
        unreadable.is_empty(),
        format!("{} ledger entries do not parse", unreadable.len()),
        unreadable,
    )
}

/// Nobody above the limit in Redis, and the buyers hash agrees with the ledger less what was
/// released.
pub(super) fn user_limit(facts: &ItemFacts, now_ms: i64, grace_ms: i64) -> Check {
    let held = facts
        .ledger
        .iter()
        .filter(|e| !facts.released.contains_key(&e.order_id));
    let ledger_totals = per_user(held.map(|e| (&*e.user_id, e.quantity)));
    let mut bad: Vec<String> = ledger_totals
        .iter()
        .filter(|(_, units)| **units > facts.per_user_limit)
        .map(|(u, _)| u.to_string())
        .collect();
    bad.extend(
        facts
            .buyers
            .iter()
            .filter(|(_, units)| **units > facts.per_user_limit)
            .map(|(u, _)| u.clone()),
    );
    // The buyers hash is read before the ledger. A user whose entries are all older than the
    // grace period bought nothing while we read, so both must agree exactly; users with a
    // recent entry are skipped (their newest units may be in one read only).
    let settled_before = now_ms - grace_ms;
    let mut recent: BTreeMap<&str, bool> = BTreeMap::new();
    for e in &facts.ledger {
        *recent.entry(&*e.user_id).or_insert(false) |= e.reserved_at_ms > settled_before;
    }
    for (user, units) in &ledger_totals {
        if !recent.get(user).copied().unwrap_or(false)
            && facts.buyers.get(*user).copied().unwrap_or(0) != *units
        {
            bad.push(user.to_string());
        }
    }
    for (user, units) in &facts.buyers {
        if *units > 0 && !ledger_totals.contains_key(user.as_str()) {
            bad.push(user.clone());
        }
    }
    bad.sort();
    bad.dedup();
    Check::verdict(
        "user_limit_redis",
        bad.is_empty(),
        format!(
            "{} users above the limit of {} or with buyers/ledger totals that disagree",
            bad.len(),
            facts.per_user_limit
        ),
        bad,
    )
}

/// Ledger entries older than the grace period all reached MySQL.
pub(super) fn ledger_persisted(facts: &ItemFacts, now_ms: i64, grace_ms: i64) -> Check {
    let missing: Vec<String> = missing_in_mysql(facts, now_ms, grace_ms)
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    Check::verdict(
        "ledger_persisted",
        missing.is_empty(),
        format!(
            "{} ledger entries older than {} s have no MySQL row",
            missing.len(),
            grace_ms / 1000
        ),
        missing,
    )
}

/// Every MySQL order came from a ledger entry.
pub(super) fn no_orphan_orders(facts: &ItemFacts) -> Check {
    let in_ledger: HashSet<Uuid> = facts.ledger.iter().map(|e| e.order_id).collect();
    let orphans: Vec<String> = facts
        .orders
        .iter()
        .filter(|o| !in_ledger.contains(&o.order_id))
        .map(|o| o.order_id.to_string())
        .collect();
    Check::verdict(
        "no_orphan_orders",
        orphans.is_empty(),
        format!("{} MySQL orders have no ledger entry", orphans.len()),
        orphans,
    )
}

/// Released units on both sides: every closed order MySQL says Redis took back is in Redis's
/// released record with its units, and Redis released nothing MySQL did not close (an order
/// still `pending_payment` in MySQL's earlier read may be closing right now, so it is allowed).
pub(super) fn released_match(facts: &ItemFacts) -> Check {
    let mut bad = Vec::new();
    let mut mysql_units = 0i64;
    for o in facts.orders.iter().filter(|o| released_units(&o.status)) {
        if o.released {
            mysql_units += i64::from(o.quantity);
            if facts.released.get(&o.order_id) != Some(&o.quantity) {
                bad.push(o.order_id.to_string());
            }
        }
    }
    let status: std::collections::HashMap<Uuid, &str> = facts
        .orders
        .iter()
        .map(|o| (o.order_id, &*o.status))
        .collect();
    for id in facts.released.keys() {
        let fine = status
            .get(id)
            .is_some_and(|s| released_units(s) || *s == STATUS_PENDING);
        if !fine {
            bad.push(id.to_string());
        }
    }
    let redis_units: i64 = facts.released.values().map(|u| i64::from(*u)).sum();
    bad.sort();
    bad.dedup();
    Check::verdict(
        "released_match",
        bad.is_empty(),
        format!(
            "released: MySQL {mysql_units} units taken back by Redis, Redis {redis_units}; {} orders disagree",
            bad.len()
        ),
        bad,
    )
}

/// A paid order keeps its units for good.
pub(super) fn paid_never_released(facts: &ItemFacts) -> Check {
    let bad: Vec<String> = facts
        .orders
        .iter()
        .filter(|o| &*o.status == STATUS_PAID && facts.released.contains_key(&o.order_id))
        .map(|o| o.order_id.to_string())
        .collect();
    Check::verdict(
        "paid_never_released",
        bad.is_empty(),
        format!("{} paid orders were released in Redis", bad.len()),
        bad,
    )
}
