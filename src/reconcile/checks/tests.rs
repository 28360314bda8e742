//! The checks' rules, one failing case each.
use super::*;
use crate::stores::mysql::orders::{STATUS_CANCELLED, STATUS_PAID, STATUS_PENDING};

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
            user_id: (*user).into(),
            quantity: 1,
            reserved_at_ms: 1_000 + i as i64,
        });
        f.buyers.insert(user.to_string(), 1);
        f.orders.push(OrderFact {
            order_id: id,
            user_id: (*user).into(),
            quantity: 1,
            status: STATUS_PENDING.into(),
            reserved_at_ms: 1_000 + i as i64,
            released: false,
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

/// The clean item with nothing of its Redis state read: no ledger, buyers or stock.
fn unread() -> ItemFacts {
    let mut f = clean();
    f.ledger_available = false;
    f.ledger.clear();
    f.buyers.clear();
    f.redis_remaining = None;
    f.redis_remaining_after = None;
    f
}

/// The check `name` of an item's checks.
fn named(f: &ItemFacts, name: &str) -> Check {
    check_item(f, 100_000, 10_000)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
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
    let orphan = named(&f, "no_orphan_orders");
    assert!(!orphan.ok);
    assert_eq!(orphan.sample_ids, vec![gone.order_id.to_string()]);
    assert!(failing(&f).contains(&"stock_balance"));
}

#[test]
fn a_deleted_order_row_is_listed_missing_and_breaks_the_mysql_balance() {
    let mut f = clean();
    let gone = f.orders.remove(1);
    let missing = named(&f, "ledger_persisted");
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
    let dup = named(&f, "no_duplicate_orders");
    assert!(!dup.ok);
    assert!(dup.sample_ids.contains(&copy.order_id.to_string()));
    assert!(dup.sample_ids.contains(&f.orders[0].order_id.to_string()));
    assert!(failing(&f).contains(&"user_limit_mysql"));
    assert!(failing(&f).contains(&"no_orphan_orders"));
}

#[test]
fn one_buyers_two_orders_in_the_same_millisecond_are_not_duplicates_when_both_were_reserved() {
    let mut f = clean();
    f.per_user_limit = 2;
    let mut second = f.orders[0].clone();
    second.order_id = Uuid::now_v7();
    f.orders.push(second.clone());
    f.ledger.push(LedgerEntry {
        order_id: second.order_id,
        user_id: second.user_id.clone(),
        quantity: second.quantity,
        reserved_at_ms: second.reserved_at_ms,
    });
    *f.buyers.get_mut("a").unwrap() = 2;
    f.mysql_stock -= 1;
    f.redis_remaining = Some(7);
    f.redis_remaining_after = Some(7);
    assert!(
        failing(&f).is_empty(),
        "{:?}",
        check_item(&f, 100_000, 10_000)
    );
    // Without the ledger (expired with the sale) the two cannot be told from a re-emitted copy.
    f.ledger_available = false;
    assert!(failing(&f).contains(&"no_duplicate_orders"));
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
    let f = unread();
    assert!(failing(&f).is_empty());
}

#[test]
fn lost_or_foreign_redis_state_is_a_failing_check_never_ok() {
    let mut f = unread();
    f.redis_state = RedisState::Lost;
    assert_eq!(failing(&f), vec!["redis_state_present"]);
    f.redis_state = RedisState::Rebuilding;
    assert_eq!(failing(&f), vec!["redis_state_present"]);
    f.redis_state = RedisState::Foreign;
    assert_eq!(failing(&f), vec!["redis_state_identity"]);
    f.redis_state = RedisState::Expired;
    assert!(failing(&f).is_empty());
}

#[test]
fn a_closed_order_that_redis_gave_back_balances_on_both_sides() {
    let mut f = clean();
    // "b" cancelled: MySQL's stock and Redis's both got the unit back.
    f.orders[1].status = STATUS_CANCELLED.into();
    f.orders[1].released = true;
    f.mysql_stock += 1;
    f.released.insert(f.orders[1].order_id, 1);
    f.buyers.remove("b");
    f.redis_remaining = Some(9);
    f.redis_remaining_after = Some(9);
    f.redis_released_before = 1;
    f.redis_released_after = 1;
    assert!(
        failing(&f).is_empty(),
        "{:?}",
        check_item(&f, 100_000, 10_000)
    );
    // Redis forgot to take it back: the released record disagrees.
    let mut lost = f.clone();
    lost.released.clear();
    assert!(failing(&lost).contains(&"released_match"));
    // A paid order released in Redis is always wrong.
    let mut paid = f.clone();
    paid.orders[0].status = STATUS_PAID.into();
    paid.released.insert(paid.orders[0].order_id, 1);
    assert!(failing(&paid).contains(&"paid_never_released"));
}

#[test]
fn a_release_landing_while_reading_stays_within_the_bounds() {
    let mut f = clean();
    // Read: stock 8 with 0 released, then the ledger, then stock 9 with 1 released ("b" was
    // cancelled meanwhile; MySQL's earlier read still shows it pending).
    f.released.insert(f.orders[1].order_id, 1);
    f.buyers.remove("b");
    f.redis_remaining_after = Some(9);
    f.redis_released_after = 1;
    let failing = failing(&f);
    assert!(!failing.contains(&"stock_balance"), "{failing:?}");
    assert!(!failing.contains(&"released_match"), "{failing:?}");
}
