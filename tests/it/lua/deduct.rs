//! deduct, one request at a time as the buy path sends it: every return code, a key's retry,
//! stock plus ledger equal to the initial stock, and the sale's identity and rebuild guards.

use chrono::Utc;
use seckill::stock::{DeductOutcome, PrewarmItem, PrewarmMode, PrewarmOutcome};

use super::{
    Figures, UID, deduct, deduct_batch, expire_with_the_sale, figures, item, ledger, meta, on_sale,
    req, service, try_deduct, warm,
};

live!(
    return_codes,
    window_and_short_stock_codes,
    a_retry_after_the_window_gets_its_order,
    a_resent_request_reserves_nothing_more,
    stock_plus_ledger_equals_the_initial_stock,
    refuses_another_sales_state,
    answers_recovering_during_a_rebuild,
);

/// NOT_WARMED, RESERVED, REPLAYED (same user and key), a key of another user, LIMIT_EXCEEDED,
/// SOLD_OUT and BAD_ARGUMENT; what the two reservations left in Redis.
async fn return_codes(version: &str) {
    let s = service().await;
    let (_, out) = deduct(&s, version, "u1", 1, None).await;
    assert_eq!(out, DeductOutcome::NotWarmed);
    s.prewarm(&on_sale(version, 3, 2), PrewarmMode::Warm)
        .await
        .unwrap();
    let (first, out) = deduct(&s, version, "u1", 1, Some("k1")).await;
    let reserved = |remaining| DeductOutcome::Reserved {
        order_id: first,
        remaining,
    };
    assert_eq!(out, reserved(2));
    // Same user and key, even for another quantity: the first order, nothing deducted.
    let (_, out) = deduct(&s, version, "u1", 2, Some("k1")).await;
    let replayed = DeductOutcome::Replayed {
        order_id: first,
        quantity: 1,
    };
    assert_eq!(out, replayed);
    // Same key, another user: a reservation of its own.
    let (second, out) = deduct(&s, version, "u2", 2, Some("k1")).await;
    assert_eq!(
        out,
        DeductOutcome::Reserved {
            order_id: second,
            remaining: 0
        }
    );
    let knows = |user: &'static str| {
        let s = s.clone();
        async move { s.knows_key(&meta(version), user, "k1").await.unwrap() }
    };
    assert!(
        knows("u1").await && knows("u2").await,
        "the buy path finds a key's order"
    );
    assert!(!knows("u3").await);
    let (_, out) = deduct(&s, version, "u1", 2, None).await;
    let exceeded = DeductOutcome::LimitExceeded {
        bought: 1,
        limit: 2,
    };
    assert_eq!(out, exceeded);
    let (_, out) = deduct(&s, version, "u3", 1, None).await;
    assert_eq!(out, DeductOutcome::SoldOut { remaining: 0 });
    let (_, out) = deduct(&s, version, "", 1, None).await;
    assert_eq!(out, DeductOutcome::BadArgument);

    let f = figures(&s).await;
    assert_eq!(f.ledger, [(first, 1), (second, 2)].into_iter().collect());
    assert_eq!(f.buyers, [("u1".into(), 1), ("u2".into(), 2)].into());
    assert_eq!(f.outbox, 2, "each reservation waits for its Kafka ack");
    f.assert_balanced(3);
    let l = ledger(&s).await;
    let mut state = [l.ledger_keys(), l.buyer_keys(), vec![l.keys.outbox.clone()]].concat();
    if !l.is_compact() {
        state.push(l.keys.idem.clone()); // v5 has no idempotency hash
    }
    expire_with_the_sale(&s, &state).await;
}

/// NOT_STARTED before the window, ENDED after it, SOLD_OUT with what remains when less than
/// asked for is left.
async fn window_and_short_stock_codes(version: &str) {
    let upcoming = service().await;
    let not_yet = item(version, 3, 1, 60_000, 60_000);
    upcoming.prewarm(&not_yet, PrewarmMode::Warm).await.unwrap();
    let (_, out) = deduct(&upcoming, version, "u1", 1, None).await;
    let starts_at_ms = not_yet.starts_at_ms;
    assert_eq!(out, DeductOutcome::NotStarted { starts_at_ms });

    let over = service().await;
    let ended = PrewarmItem {
        expire_at_ms: Utc::now().timestamp_millis() + 60_000,
        ..item(version, 3, 1, -120_000, 60_000)
    };
    let warmed = over.prewarm(&ended, PrewarmMode::Warm).await.unwrap();
    assert_eq!(warmed, PrewarmOutcome::Warmed { remaining: 3 });
    let (_, out) = deduct(&over, version, "u1", 1, None).await;
    assert_eq!(out, DeductOutcome::Ended);

    let short = warm(version, 2, 5).await;
    let (_, out) = deduct(&short, version, "u1", 3, None).await;
    assert_eq!(out, DeductOutcome::SoldOut { remaining: 2 });
    assert_eq!(figures(&short).await.stock, Some(2));
}

/// A retry with the same key after the window closed gets its order; a new key is ENDED.
async fn a_retry_after_the_window_gets_its_order(version: &str) {
    let s = service().await;
    let window = item(version, 5, 2, -1_000, 3_000);
    s.prewarm(&window, PrewarmMode::Warm).await.unwrap();
    let (id, out) = deduct(&s, version, "u1", 2, Some("late")).await;
    assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
    let closed_in = window.ends_at_ms - Utc::now().timestamp_millis() + 100;
    tokio::time::sleep(std::time::Duration::from_millis(closed_in.max(0) as u64)).await;
    let (_, out) = deduct(&s, version, "u1", 1, Some("late")).await;
    let replayed = DeductOutcome::Replayed {
        order_id: id,
        quantity: 2,
    };
    assert_eq!(out, replayed);
    let (_, out) = deduct(&s, version, "u1", 1, Some("other")).await;
    assert_eq!(out, DeductOutcome::Ended);
}

/// A request sent again with its order id (no key) answers RESERVED and takes nothing more.
async fn a_resent_request_reserves_nothing_more(version: &str) {
    let s = warm(version, 5, 3).await;
    let (id, _) = deduct(&s, version, "u1", 2, None).await;
    let again = try_deduct(&s, version, id, "u1", 2, None).await.unwrap();
    let order_id = id;
    assert_eq!(
        again,
        DeductOutcome::Reserved {
            order_id,
            remaining: 3
        }
    );
    let f = figures(&s).await;
    assert_eq!(f.ledger.len(), 1);
    assert_eq!(f.buyers["u1"], 2);
    f.assert_balanced(5);
}

/// 40 buyers, each three requests of one or two units, racing for 50 units: the stock runs out
/// exactly, every unit is in the ledger, nobody holds more than the limit of 3.
async fn stock_plus_ledger_equals_the_initial_stock(version: &str) {
    let s = warm(version, 50, 3).await;
    let tasks: Vec<_> = (0..40)
        .map(|u| {
            let (s, version) = (s.clone(), version.to_string());
            tokio::spawn(async move {
                for _ in 0..3 {
                    deduct(&s, &version, &format!("u{u}"), 1 + (u % 2), None).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let f = figures(&s).await;
    assert_eq!(f.stock, Some(0), "the stock runs out exactly");
    f.assert_balanced(50);
    assert!(f.buyers.values().all(|&units| units <= 3), "{f:?}");
}

/// A call under another sale's uid answers FOREIGN_STATE to each request and changes nothing;
/// its own sale then buys.
async fn refuses_another_sales_state(version: &str) {
    let s = warm(version, 5, 2).await;
    let before = figures(&s).await;
    let theirs = [req(version, "a", "1", ""), req(version, "b", "1", "k")];
    let replies = deduct_batch(&s, version, "sale-b", &theirs, 2)
        .await
        .unwrap();
    assert_eq!(super::all_ints(&replies), [[-7], [-7]]);
    assert_eq!(figures(&s).await, before);
    let mine = [
        req(version, "a", "1", ""),
        req(version, "a", "1", ""),
        req(version, "a", "1", ""),
    ];
    let replies = deduct_batch(&s, version, UID, &mine, 3).await.unwrap();
    let codes = super::all_ints(&replies);
    assert_eq!(codes, [vec![1, 4], vec![1, 3], vec![-4, 2, 2]]);
}

/// While a rebuild runs every request is answered RECOVERING and nothing is written.
async fn answers_recovering_during_a_rebuild(version: &str) {
    let s = service().await;
    super::begin_rebuild(&s, &on_sale(version, 10, 2), "t1").await;
    let both = [req(version, "a", "1", ""), req(version, "b", "1", "k")];
    let replies = deduct_batch(&s, version, UID, &both, 2).await.unwrap();
    assert_eq!(super::all_ints(&replies), [[-8], [-8]]);
    let (_, out) = deduct(&s, version, "c", 1, None).await;
    assert_eq!(out, DeductOutcome::Recovering);
    let f: Figures = figures(&s).await;
    assert!(
        f.ledger.is_empty() && f.buyers.is_empty() && f.stock.is_none(),
        "{f:?}"
    );
}
