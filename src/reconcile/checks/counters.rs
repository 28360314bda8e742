//! The checks of a live sale's counters pass: what can be proved from counters alone, without
//! reading the ledger or the order rows, so that the pass costs Redis a few reads per item while
//! buyers compete for its core. MySQL is read before Redis; ledger entries and the units they
//! took only grow, so a buy landing between the reads never looks like a discrepancy.

use super::{Check, RedisState, mysql_side, state_check};
use crate::stores::mysql::orders::ItemTotals;

/// Everything the counters pass reads of one item.
#[derive(Debug, Clone, Default)]
pub(crate) struct CounterFacts {
    /// Units put on sale (MySQL).
    pub initial_stock: i64,
    /// MySQL-side remaining units, read with `totals`.
    pub mysql_stock: i64,
    /// MySQL's orders by status, read in the same transaction as `mysql_stock`.
    pub totals: ItemTotals,
    /// Redis remaining units; `None` when the key is missing.
    pub redis_remaining: Option<i64>,
    /// Ledger entries (meta `entries`, or the ledger hash's length before script v5).
    pub redis_entries: u64,
    /// Units Redis took back (meta `released_units`), read with `redis_remaining`.
    pub redis_released: i64,
    /// Whether the item's Redis state is there and belongs to this sale.
    pub redis_state: RedisState,
}

impl CounterFacts {
    /// Orders of the item in MySQL, whatever their status.
    pub(crate) fn mysql_orders(&self) -> u64 {
        let t = &self.totals;
        t.persisted_orders + t.cancelled_orders + t.expired_orders + t.rejected_orders
    }

    /// Units the Redis ledger holds, from the invariant
    /// `initial == remaining + reserved - released`.
    pub(crate) fn redis_reserved_units(&self) -> Option<i64> {
        self.redis_remaining
            .map(|r| self.initial_stock - r + self.redis_released)
    }
}

/// Runs the counters checks on one item.
pub(crate) fn check_counters(facts: &CounterFacts) -> Vec<Check> {
    let mut checks: Vec<Check> = state_check(facts.redis_state).into_iter().collect();
    let present = facts.redis_state == RedisState::Present;
    if present {
        checks.push(stock_within_bounds(facts));
    }
    checks.push(persisted_within_stock(facts));
    checks.push(mysql_stock_balance(facts));
    if present {
        checks.push(ledger_covers_orders(facts));
    }
    checks.push(no_rejected_orders(facts));
    checks
}

/// Redis never sells below zero or holds more than was put on sale.
fn stock_within_bounds(facts: &CounterFacts) -> Check {
    let Some(remaining) = facts.redis_remaining else {
        return Check::fail(
            "stock_within_bounds",
            "the Redis stock key is missing while the item's meta is there".to_string(),
            Vec::new(),
        );
    };
    Check::verdict(
        "stock_within_bounds",
        (0..=facts.initial_stock).contains(&remaining),
        format!(
            "redis remaining {remaining} within 0..={}",
            facts.initial_stock
        ),
        Vec::new(),
    )
}

/// Orders holding units never exceed what was put on sale.
fn persisted_within_stock(facts: &CounterFacts) -> Check {
    mysql_side::within_stock(facts.totals.persisted_units as i64, facts.initial_stock)
}

/// `stock + pending + paid == initial` in MySQL.
fn mysql_stock_balance(facts: &CounterFacts) -> Check {
    let held = facts.totals.persisted_units as i64;
    mysql_side::stock_balance(facts.mysql_stock, held, facts.initial_stock)
}

/// Every MySQL order came from a ledger entry: MySQL never holds more orders, or more units,
/// than the ledger read after it. What the ledger holds beyond MySQL is on its way (the outbox,
/// Kafka, the consumer); the full pass after the end checks it order by order.
fn ledger_covers_orders(facts: &CounterFacts) -> Check {
    let orders = facts.mysql_orders();
    let units = (facts.totals.persisted_units + facts.totals.released_units) as i64;
    let ledger_units = facts.redis_reserved_units();
    let ok = orders <= facts.redis_entries && ledger_units.is_none_or(|l| units <= l);
    Check::verdict(
        "ledger_covers_orders",
        ok,
        format!(
            "mysql orders {orders} <= ledger entries {} ({} on their way); mysql units {units} <= ledger units {}",
            facts.redis_entries,
            facts.redis_entries.saturating_sub(orders),
            ledger_units.map_or_else(|| "-".to_string(), |u| u.to_string())
        ),
        Vec::new(),
    )
}

/// No order Redis confirmed was rejected by MySQL.
fn no_rejected_orders(facts: &CounterFacts) -> Check {
    let rejected = facts.totals.rejected_orders;
    Check::verdict(
        "no_rejected_orders",
        rejected == 0,
        format!("{rejected} orders confirmed by Redis were rejected by MySQL"),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 on sale; 30 reserved in Redis, of which 20 persisted (15 holding, 5 released back).
    fn balanced() -> CounterFacts {
        CounterFacts {
            initial_stock: 100,
            mysql_stock: 85,
            totals: ItemTotals {
                persisted_units: 15,
                persisted_orders: 15,
                pending_orders: 10,
                paid_orders: 5,
                expired_orders: 5,
                released_units: 5,
                ..ItemTotals::default()
            },
            redis_remaining: Some(75),
            redis_entries: 30,
            redis_released: 5,
            redis_state: RedisState::Present,
        }
    }

    fn failing(facts: &CounterFacts) -> Vec<&'static str> {
        check_counters(facts)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_balanced_item_passes_and_shows_what_is_on_its_way() {
        let checks = check_counters(&balanced());
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        let names: Vec<_> = checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "stock_within_bounds",
                "persisted_within_stock",
                "mysql_stock_balance",
                "ledger_covers_orders",
                "no_rejected_orders"
            ]
        );
        let cover = checks
            .iter()
            .find(|c| c.name == "ledger_covers_orders")
            .unwrap();
        assert!(
            cover.detail.contains("(10 on their way)"),
            "{}",
            cover.detail
        );
        assert!(cover.detail.contains("ledger units 30"), "{}", cover.detail);
    }

    #[test]
    fn each_rule_fails_on_its_own_discrepancy() {
        let mut f = balanced();
        f.redis_remaining = Some(-1);
        assert_eq!(failing(&f), ["stock_within_bounds"]);
        // Above the initial stock: the ledger would also hold fewer units than MySQL.
        f.redis_remaining = Some(101);
        assert_eq!(failing(&f), ["stock_within_bounds", "ledger_covers_orders"]);

        let mut f = balanced();
        f.redis_remaining = None;
        assert_eq!(failing(&f), ["stock_within_bounds"]);

        let mut f = balanced();
        f.mysql_stock = 86;
        assert_eq!(failing(&f), ["mysql_stock_balance"]);

        let mut f = balanced();
        f.initial_stock = 14;
        f.mysql_stock = -1;
        f.redis_remaining = Some(0);
        f.redis_released = 6;
        assert_eq!(failing(&f), ["persisted_within_stock"]);

        // A MySQL order with no ledger entry: more orders than entries.
        let mut f = balanced();
        f.redis_entries = 19;
        assert_eq!(failing(&f), ["ledger_covers_orders"]);
        // More units in MySQL than the ledger took.
        let mut f = balanced();
        f.redis_remaining = Some(86);
        assert_eq!(failing(&f), ["ledger_covers_orders"]);

        let mut f = balanced();
        f.totals.rejected_orders = 1;
        f.redis_entries = 31;
        assert_eq!(failing(&f), ["no_rejected_orders"]);
    }

    #[test]
    fn redis_state_that_is_not_this_sales_skips_the_redis_rules() {
        let mut f = balanced();
        f.redis_state = RedisState::Foreign;
        f.redis_remaining = Some(-5);
        f.redis_entries = 0;
        assert_eq!(failing(&f), ["redis_state_identity"]);
        f.redis_state = RedisState::Lost;
        assert_eq!(failing(&f), ["redis_state_present"]);
        f.redis_state = RedisState::Expired;
        assert!(failing(&f).is_empty());
    }
}
