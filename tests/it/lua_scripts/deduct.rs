//! The deduct script of each version, one request at a time: its return codes, and stock plus
//! ledger equal to the initial stock whatever the quantities.

use chrono::Utc;
use redis::AsyncCommands;
use seckill::stock::{DeductOutcome, PrewarmItem, PrewarmMode, StockService, ledger::ItemLedger};

use super::{deduct, deduct_with, item, service};

#[tokio::test]
async fn deduct_return_codes() {
    deduct_return_codes_of("v1").await;
}

#[tokio::test]
async fn batching_deduct_return_codes_one_request_at_a_time() {
    deduct_return_codes_of("v2").await;
}

#[tokio::test]
async fn identity_checking_deduct_return_codes_one_request_at_a_time() {
    deduct_return_codes_of("v3").await;
}

#[tokio::test]
async fn compact_ledger_deduct_return_codes_one_request_at_a_time() {
    deduct_return_codes_of("v5").await;
}

/// Every documented code of the deduct script a sale of `version` runs, warmed by the prewarm
/// script of that version.
async fn deduct_return_codes_of(version: &str) {
    let deduct = |s: &StockService, user: &'static str, qty: u32, idem: Option<&'static str>| {
        let s = s.clone();
        let version = version.to_string();
        async move { deduct_with(&version, &s, user, qty, idem).await }
    };
    let item = |stock, limit, starts_in_ms, lasts_ms| PrewarmItem {
        script_version: version.to_string(),
        ..item(stock, limit, starts_in_ms, lasts_ms)
    };
    let s = service().await;
    let (_, out) = deduct(&s, "u1", 1, None).await;
    assert_eq!(out, DeductOutcome::NotWarmed);

    s.prewarm(&item(3, 2, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let (id1, out) = deduct(&s, "u1", 1, Some("k1")).await;
    assert_eq!(
        out,
        DeductOutcome::Reserved {
            order_id: id1,
            remaining: 2
        }
    );
    // Same user and key: the first order comes back, nothing deducted.
    let (_, out) = deduct(&s, "u1", 1, Some("k1")).await;
    assert_eq!(
        out,
        DeductOutcome::Replayed {
            order_id: id1,
            quantity: 1
        }
    );
    // Same key, another user: a separate reservation.
    let (_, out) = deduct(&s, "u2", 2, Some("k1")).await;
    assert!(
        matches!(out, DeductOutcome::Reserved { remaining: 0, .. }),
        "{out:?}"
    );
    let (_, out) = deduct(&s, "u1", 2, None).await;
    assert_eq!(
        out,
        DeductOutcome::LimitExceeded {
            bought: 1,
            limit: 2
        }
    );
    let (_, out) = deduct(&s, "u3", 1, None).await;
    assert_eq!(out, DeductOutcome::SoldOut { remaining: 0 });
    let (_, out) = deduct(&s, "", 1, None).await;
    assert_eq!(out, DeductOutcome::BadArgument);

    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let l = ItemLedger::open(&mut conn, keys.clone(), 1, 1)
        .await
        .unwrap();
    let mut entries = 0;
    for key in l.ledger_keys() {
        let fields: Vec<Vec<u8>> = conn.hkeys(&key).await.unwrap();
        entries += fields
            .iter()
            .filter(|f| l.order_of_field(f).is_some())
            .count();
    }
    assert_eq!(entries, 2);
    let outbox: Vec<Vec<u8>> = conn.zrange(&keys.outbox, 0, -1).await.unwrap();
    assert_eq!(outbox.len(), 2, "each reservation waits for its Kafka ack");
    // v5 keeps no idempotency hash (a key's retry is found by its derived order id).
    let idem = (!l.is_compact()).then_some(keys.idem.clone());
    let expiring = [l.buyer_keys(), l.ledger_keys(), vec![keys.outbox.clone()]];
    for key in expiring.iter().flatten().chain(&idem) {
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0, "{key} must expire with the sale, pttl {ttl}");
    }

    let upcoming = service().await;
    let not_yet = item(3, 1, 60_000, 60_000);
    upcoming.prewarm(&not_yet, PrewarmMode::Warm).await.unwrap();
    let (_, out) = deduct(&upcoming, "u1", 1, None).await;
    assert_eq!(
        out,
        DeductOutcome::NotStarted {
            starts_at_ms: not_yet.starts_at_ms
        }
    );

    let over = service().await;
    let mut ended = item(3, 1, -120_000, 60_000);
    ended.expire_at_ms = Utc::now().timestamp_millis() + 60_000;
    over.prewarm(&ended, PrewarmMode::Warm).await.unwrap();
    let (_, out) = deduct(&over, "u1", 1, None).await;
    assert_eq!(out, DeductOutcome::Ended);

    let partial = service().await;
    partial
        .prewarm(&item(2, 5, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let (_, out) = deduct(&partial, "u1", 3, None).await;
    assert_eq!(out, DeductOutcome::SoldOut { remaining: 2 });
}

#[tokio::test]
async fn a_retry_after_the_window_closed_still_gets_its_order() {
    let s = service().await;
    let mut window = item(5, 2, -1_000, 2_000);
    window.expire_at_ms = Utc::now().timestamp_millis() + 60_000;
    s.prewarm(&window, PrewarmMode::Warm).await.unwrap();
    let (id, out) = deduct(&s, "u1", 2, Some("late")).await;
    assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (_, out) = deduct(&s, "u1", 1, Some("late")).await;
    assert_eq!(
        out,
        DeductOutcome::Replayed {
            order_id: id,
            quantity: 2
        }
    );
    let (_, out) = deduct(&s, "u1", 1, Some("other")).await;
    assert!(matches!(out, DeductOutcome::Ended), "{out:?}");
}

/// 40 buyers, each three requests of one or two units, racing for 50 units: the stock runs out
/// exactly, every unit is in the ledger, nobody holds more than the limit of 3.
async fn mixed_quantities_keep_stock_plus_ledger_equal_to_the_initial_stock(version: &'static str) {
    let s = service().await;
    let mut warm = item(50, 3, -1_000, 60_000);
    warm.script_version = version.into();
    s.prewarm(&warm, PrewarmMode::Warm).await.unwrap();
    let mut tasks = Vec::new();
    for u in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                deduct_with(version, &s, &format!("u{u}"), 1 + (u % 2), None).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let remaining: i64 = conn.get(&keys.stock).await.unwrap();
    let ledger = ItemLedger::open(&mut conn, keys.clone(), 1, 1)
        .await
        .unwrap();
    let (reserved, buyers): (i64, Vec<(String, i64)>) = if ledger.is_compact() {
        let events = ledger.all_events(&mut conn).await.unwrap();
        let buyers = ledger.all_buyers(&mut conn).await.unwrap();
        (
            events.values().map(|e| i64::from(e.quantity)).sum(),
            buyers.into_iter().collect(),
        )
    } else {
        // These tests' payloads before v5 are a small JSON of their own.
        let entries: Vec<String> = conn.hvals(&keys.ledger).await.unwrap();
        let reserved = entries
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(e).unwrap();
                v["qty"].as_i64().unwrap()
            })
            .sum();
        (reserved, conn.hgetall(&keys.buyers).await.unwrap())
    };
    assert_eq!(remaining, 0, "{version}: the stock runs out exactly");
    assert_eq!(remaining + reserved, 50, "{version}");
    assert!(
        buyers.iter().all(|(_, units)| *units <= 3),
        "{version}: {buyers:?}"
    );
    let held: i64 = buyers.iter().map(|(_, units)| units).sum();
    assert_eq!(
        held, reserved,
        "{version}: buyers' units equal the ledger's"
    );
}

#[tokio::test]
async fn stock_plus_ledger_always_equals_the_initial_stock() {
    mixed_quantities_keep_stock_plus_ledger_equal_to_the_initial_stock("v1").await;
}

#[tokio::test]
async fn stock_plus_ledger_always_equals_the_initial_stock_in_batches() {
    mixed_quantities_keep_stock_plus_ledger_equal_to_the_initial_stock("v2").await;
}

#[tokio::test]
async fn stock_plus_ledger_always_equals_the_initial_stock_with_the_newest_scripts() {
    mixed_quantities_keep_stock_plus_ledger_equal_to_the_initial_stock("v4").await;
}

#[tokio::test]
async fn stock_plus_ledger_always_equals_the_initial_stock_in_the_compact_ledger() {
    mixed_quantities_keep_stock_plus_ledger_equal_to_the_initial_stock("v5").await;
}
