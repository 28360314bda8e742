//! The checks of one sale item, as a pure function of what was read from Redis and MySQL, so
//! each rule is unit-tested without servers.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

use crate::store::orders::STATUS_PERSISTED;

/// Sample ids listed per failing check; enough to start an investigation.
pub const SAMPLE_IDS: usize = 20;

/// One reservation in the Redis ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Order id.
    pub order_id: Uuid,
    /// Buyer.
    pub user_id: String,
    /// Units.
    pub quantity: u32,
    /// Reservation time, Unix ms.
    pub reserved_at_ms: i64,
}

/// One order row as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    /// Order id.
    pub order_id: Uuid,
    /// Buyer.
    pub user_id: String,
    /// Units.
    pub quantity: u32,
    /// `persisted` or `rejected`.
    pub status: String,
    /// Reservation time, Unix ms.
    pub reserved_at_ms: i64,
}

/// Everything read about one item.
#[derive(Debug, Clone, Default)]
pub struct ItemFacts {
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
    /// Ledger entries that parsed.
    pub ledger: Vec<LedgerEntry>,
    /// Ledger fields that did not parse.
    pub unreadable_ledger: Vec<String>,
    /// The buyers hash (user -> units).
    pub buyers: HashMap<String, i64>,
    /// MySQL orders of the item.
    pub orders: Vec<OrderFact>,
    /// False when the ledger is gone (expired with the sale): ledger-based checks are skipped.
    pub ledger_available: bool,
    /// Whether the item's Redis state is there and belongs to this sale.
    pub redis_state: RedisState,
}

/// What reconciliation found of an item's Redis state (meta), before reading the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedisState {
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
}

/// One check: ok, or a discrepancy with a count and sample ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
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
pub fn missing_in_mysql(facts: &ItemFacts, now_ms: i64, grace_ms: i64) -> Vec<Uuid> {
    let in_mysql: HashSet<Uuid> = facts.orders.iter().map(|o| o.order_id).collect();
    facts
        .ledger
        .iter()
        .filter(|e| e.reserved_at_ms <= now_ms - grace_ms && !in_mysql.contains(&e.order_id))
        .map(|e| e.order_id)
        .collect()
}

/// Runs every check on one item.
pub fn check_item(facts: &ItemFacts, now_ms: i64, grace_ms: i64) -> Vec<Check> {
    let mut checks = Vec::new();
    let persisted: Vec<&OrderFact> = facts
        .orders
        .iter()
        .filter(|o| o.status == STATUS_PERSISTED)
        .collect();
    let persisted_units: i64 = persisted.iter().map(|o| i64::from(o.quantity)).sum();
    let ledger_units: i64 = facts.ledger.iter().map(|e| i64::from(e.quantity)).sum();

    match facts.redis_state {
        RedisState::Present | RedisState::Expired => {}
        RedisState::Lost => checks.push(Check::fail(
            "redis_state_present",
            "the item's Redis state is missing although the sale's keys should live until its end + grace: lost (a Redis restarted empty?); recovery rebuilds it from MySQL".to_string(),
            Vec::new(),
        )),
        RedisState::Rebuilding => checks.push(Check::fail(
            "redis_state_present",
            "the item's Redis state is being rebuilt from MySQL".to_string(),
            Vec::new(),
        )),
        RedisState::Foreign => checks.push(Check::fail(
            "redis_state_identity",
            "the item's Redis keys hold another sale's state (another database sharing this Redis and key prefix?); nothing of it was read".to_string(),
            Vec::new(),
        )),
    }

    if facts.ledger_available {
        // The ledger was read between two reads of the stock. Every reservation decrements the
        // stock and adds its entry in one step, and entries are never removed, so a consistent
        // store satisfies `after + ledger <= initial <= before + ledger`; with no buys in
        // between, both bounds meet and the check is exact.
        let verdict = match (facts.redis_remaining, facts.redis_remaining_after) {
            (Some(before), Some(after)) => {
                let ok = after + ledger_units <= facts.initial_stock
                    && facts.initial_stock <= before + ledger_units;
                let detail = if before == after {
                    format!(
                        "initial {} vs redis remaining {before} + reserved {ledger_units} = {}",
                        facts.initial_stock,
                        before + ledger_units
                    )
                } else {
                    format!(
                        "initial {} vs redis remaining {after}..{before} (buys landed while reading) + reserved {ledger_units} = {}..{}",
                        facts.initial_stock,
                        after + ledger_units,
                        before + ledger_units
                    )
                };
                (ok, detail)
            }
            _ => (false, "the Redis stock key is missing".to_string()),
        };
        checks.push(Check::verdict(
            "stock_balance",
            verdict.0,
            verdict.1,
            Vec::new(),
        ));
        let unreadable = facts.unreadable_ledger.clone();
        checks.push(Check::verdict(
            "ledger_readable",
            unreadable.is_empty(),
            format!("{} ledger entries do not parse", unreadable.len()),
            unreadable,
        ));
    }

    checks.push(Check::verdict(
        "persisted_within_stock",
        persisted_units <= facts.initial_stock,
        format!(
            "persisted {persisted_units} of initial {}",
            facts.initial_stock
        ),
        Vec::new(),
    ));
    checks.push(Check::verdict(
        "mysql_stock_balance",
        facts.mysql_stock + persisted_units == facts.initial_stock,
        format!(
            "mysql stock {} + persisted {persisted_units} = {} vs initial {}",
            facts.mysql_stock,
            facts.mysql_stock + persisted_units,
            facts.initial_stock
        ),
        Vec::new(),
    ));

    if facts.ledger_available {
        let ledger_totals = per_user(
            facts
                .ledger
                .iter()
                .map(|e| (e.user_id.as_str(), e.quantity)),
        );
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
        // The buyers hash is read before the ledger. A user whose entries are all older than
        // the grace period bought nothing while we read, so both must agree exactly; users
        // with a recent entry are skipped (their newest units may be in one read only).
        let settled_before = now_ms - grace_ms;
        let mut recent: BTreeMap<&str, bool> = BTreeMap::new();
        for e in &facts.ledger {
            *recent.entry(e.user_id.as_str()).or_insert(false) |= e.reserved_at_ms > settled_before;
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
        checks.push(Check::verdict(
            "user_limit_redis",
            bad.is_empty(),
            format!(
                "{} users above the limit of {} or with buyers/ledger totals that disagree",
                bad.len(),
                facts.per_user_limit
            ),
            bad,
        ));
    }

    let mysql_totals = per_user(persisted.iter().map(|o| (o.user_id.as_str(), o.quantity)));
    let over: Vec<String> = mysql_totals
        .iter()
        .filter(|(_, units)| **units > facts.per_user_limit)
        .map(|(u, _)| u.to_string())
        .collect();
    checks.push(Check::verdict(
        "user_limit_mysql",
        over.is_empty(),
        format!(
            "{} users above the limit of {} in MySQL",
            over.len(),
            facts.per_user_limit
        ),
        over,
    ));

    let rejected: Vec<String> = facts
        .orders
        .iter()
        .filter(|o| o.status != STATUS_PERSISTED)
        .map(|o| o.order_id.to_string())
        .collect();
    checks.push(Check::verdict(
        "no_rejected_orders",
        rejected.is_empty(),
        format!(
            "{} orders confirmed by Redis were rejected by MySQL",
            rejected.len()
        ),
        rejected,
    ));

    if facts.ledger_available {
        let missing: Vec<String> = missing_in_mysql(facts, now_ms, grace_ms)
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        checks.push(Check::verdict(
            "ledger_persisted",
            missing.is_empty(),
            format!(
                "{} ledger entries older than {} s have no MySQL row",
                missing.len(),
                grace_ms / 1000
            ),
            missing,
        ));
        let in_ledger: HashSet<Uuid> = facts.ledger.iter().map(|e| e.order_id).collect();
        let orphans: Vec<String> = facts
            .orders
            .iter()
            .filter(|o| !in_ledger.contains(&o.order_id))
            .map(|o| o.order_id.to_string())
            .collect();
        checks.push(Check::verdict(
            "no_orphan_orders",
            orphans.is_empty(),
            format!("{} MySQL orders have no ledger entry", orphans.len()),
            orphans,
        ));
    }

    // The same reservation stored twice under different ids (a re-emitter that minted new ids).
    let mut by_content: HashMap<(&str, u32, i64), Vec<Uuid>> = HashMap::new();
    for o in &facts.orders {
        by_content
            .entry((o.user_id.as_str(), o.quantity, o.reserved_at_ms))
            .or_default()
            .push(o.order_id);
    }
    let mut dups: Vec<String> = by_content
        .into_values()
        .filter(|ids| ids.len() > 1)
        .flatten()
        .map(|id| id.to_string())
        .collect();
    dups.sort();
    checks.push(Check::verdict(
        "no_duplicate_orders",
        dups.is_empty(),
        format!("{} orders duplicate another reservation", dups.len()),
        dups,
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> ItemFacts {
        let mut f = ItemFacts {
            initial_stock: 10,
            per_user_limit: 1,
            mysql_stock: 8,
            redis_remaining: Some(8),
            redis_remaining_after: Some(8),
            ledger_available: true,
            redis_state: RedisState::Present,
            ..Default::default()
        };
        for (i, user) in ["a", "b"].iter().enumerate() {
            let id = Uuid::now_v7();
            f.ledger.push(LedgerEntry {
                order_id: id,
                user_id: user.to_string(),
                quantity: 1,
                reserved_at_ms: 1_000 + i as i64,
            });
            f.buyers.insert(user.to_string(), 1);
            f.orders.push(OrderFact {
                order_id: id,
                user_id: user.to_string(),
                quantity: 1,
                status: "persisted".into(),
                reserved_at_ms: 1_000 + i as i64,
            });
        }
        f
    }

    fn failing(f: &ItemFacts) -> Vec<&'static str> {
        check_item(f, 100_000, 10_000)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_clean_item_passes_every_check() {
        assert!(
            failing(&clean()).is_empty(),
            "{:?}",
            check_item(&clean(), 100_000, 10_000)
        );
    }

    #[test]
    fn a_deleted_ledger_entry_breaks_the_balance_and_orphans_its_order() {
        let mut f = clean();
        let gone = f.ledger.remove(0);
        let checks = check_item(&f, 100_000, 10_000);
        let orphan = checks
            .iter()
            .find(|c| c.name == "no_orphan_orders")
            .unwrap();
        assert!(!orphan.ok);
        assert_eq!(orphan.sample_ids, vec![gone.order_id.to_string()]);
        assert!(failing(&f).contains(&"stock_balance"));
    }

    #[test]
    fn a_deleted_order_row_is_listed_missing_and_breaks_the_mysql_balance() {
        let mut f = clean();
        let gone = f.orders.remove(1);
        let checks = check_item(&f, 100_000, 10_000);
        let missing = checks
            .iter()
            .find(|c| c.name == "ledger_persisted")
            .unwrap();
        assert_eq!(missing.sample_ids, vec![gone.order_id.to_string()]);
        assert!(failing(&f).contains(&"mysql_stock_balance"));
    }

    #[test]
    fn young_ledger_entries_are_not_reported_missing() {
        let mut f = clean();
        f.orders.remove(1);
        f.mysql_stock += 1;
        assert!(failing(&f).contains(&"ledger_persisted"));
        // Evaluated right after the reservation, inside the grace period: still in flight.
        assert!(
            check_item(&f, 1_500, 10_000)
                .iter()
                .all(|c| c.name != "ledger_persisted" || c.ok)
        );
    }

    #[test]
    fn a_changed_stock_key_breaks_the_balance() {
        let mut f = clean();
        f.redis_remaining = Some(9);
        f.redis_remaining_after = Some(9);
        assert_eq!(failing(&f), vec!["stock_balance"]);
        f.redis_remaining = None;
        assert_eq!(failing(&f), vec!["stock_balance"]);
    }

    #[test]
    fn buys_landing_while_reading_are_within_the_bounds() {
        // Read: stock 8, then a ledger that already holds one more entry (a buy landed), then
        // stock 6 (another landed after the ledger read).
        let mut f = clean();
        f.ledger.push(LedgerEntry {
            order_id: Uuid::now_v7(),
            user_id: "c".into(),
            quantity: 1,
            reserved_at_ms: 99_000,
        });
        f.redis_remaining_after = Some(6);
        assert!(
            !failing(&f).contains(&"stock_balance"),
            "{:?}",
            check_item(&f, 100_000, 10_000)
        );
        // A stock key raised by hand is out of bounds even then.
        f.redis_remaining = Some(12);
        f.redis_remaining_after = Some(11);
        assert!(failing(&f).contains(&"stock_balance"));
    }

    #[test]
    fn a_duplicate_row_is_listed_with_both_ids() {
        let mut f = clean();
        let mut copy = f.orders[0].clone();
        copy.order_id = Uuid::now_v7();
        f.orders.push(copy.clone());
        f.mysql_stock -= 1;
        let checks = check_item(&f, 100_000, 10_000);
        let dup = checks
            .iter()
            .find(|c| c.name == "no_duplicate_orders")
            .unwrap();
        assert!(!dup.ok);
        assert!(dup.sample_ids.contains(&copy.order_id.to_string()));
        assert!(dup.sample_ids.contains(&f.orders[0].order_id.to_string()));
        assert!(failing(&f).contains(&"user_limit_mysql"));
        assert!(failing(&f).contains(&"no_orphan_orders"));
    }

    #[test]
    fn limits_and_rejections_are_reported() {
        let mut f = clean();
        f.buyers.insert("a".into(), 2);
        assert_eq!(failing(&f), vec!["user_limit_redis"]);
        let mut f = clean();
        f.orders[0].status = "rejected".into();
        f.mysql_stock += 1;
        assert_eq!(failing(&f), vec!["no_rejected_orders"]);
    }

    #[test]
    fn an_expired_ledger_skips_ledger_checks() {
        let mut f = clean();
        f.ledger_available = false;
        f.ledger.clear();
        f.buyers.clear();
        f.redis_remaining = None;
        f.redis_remaining_after = None;
        assert!(failing(&f).is_empty());
    }

    #[test]
    fn lost_or_foreign_redis_state_is_a_failing_check_never_ok() {
        let mut f = clean();
        f.ledger_available = false;
        f.ledger.clear();
        f.buyers.clear();
        f.redis_remaining = None;
        f.redis_remaining_after = None;
        f.redis_state = RedisState::Lost;
        assert_eq!(failing(&f), vec!["redis_state_present"]);
        f.redis_state = RedisState::Rebuilding;
        assert_eq!(failing(&f), vec!["redis_state_present"]);
        f.redis_state = RedisState::Foreign;
        assert_eq!(failing(&f), vec!["redis_state_identity"]);
        f.redis_state = RedisState::Expired;
        assert!(failing(&f).is_empty());
    }
}
