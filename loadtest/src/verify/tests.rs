//! Tests of the drain test and of the promises judged on a sale's view.

use serde_json::{Value, json};

use super::{ClientTally, is_drained, promises::judge};

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
    assert!(
        v.problems.iter().any(|p| p
            == "item 1: 10 reservations in the Redis ledger but this client, the only buyer, got 8 confirmed (+0 of unknown fate)"),
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
