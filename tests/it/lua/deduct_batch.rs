//! deduct's batches, sent by hand: each request answered as if sent alone, in order; a batch
//! that breaks the argument contract writes nothing; concurrent buys share calls.

use seckill::stock::{DeductOutcome, scripts::ScriptKind};

use super::{
    UID, all_ints, deduct, deduct_batch, expire_with_the_sale, figures, ints, label, ledger,
    replayed, req, service, warm,
};

live!(
    each_request_as_if_sent_alone,
    a_wrong_argument_count_is_refused_and_writes_nothing,
    not_warmed_to_each,
    a_batch_sent_twice_reserves_once,
    a_fractional_quantity_is_refused_alone,
);
live!(multi_thread: concurrent_buys_share_calls_and_never_oversell);

/// Eight requests in one call: reserved, a retry of the first (replayed), over the limit, no
/// user, sold out within the batch, quantity 0.
async fn each_request_as_if_sent_alone(version: &str) {
    let s = warm(version, 5, 2).await;
    let batch = [
        req(version, "a", "1", "k"),
        req(version, "a", "1", "k"),
        req(version, "a", "2", ""),
        req(version, "b", "2", ""),
        req(version, "", "1", ""),
        req(version, "c", "2", ""),
        req(version, "d", "1", ""),
        req(version, "a", "0", ""),
    ];
    let replies = deduct_batch(&s, version, UID, &batch, 8).await.unwrap();
    assert_eq!(replies.len(), 8);
    assert_eq!(ints(&replies[0]), [1, 4], "reserved, 4 left");
    assert_eq!(
        replayed(&replies[1]),
        (batch[0].order, 1),
        "a retry earlier in the same batch is replayed"
    );
    assert_eq!(ints(&replies[2]), [-4, 1, 2], "a holds 1 of at most 2");
    assert_eq!(ints(&replies[3]), [1, 2]);
    assert_eq!(ints(&replies[4]), [-6], "no user");
    assert_eq!(ints(&replies[5]), [1, 0]);
    assert_eq!(ints(&replies[6]), [-5, 0], "sold out within the batch");
    assert_eq!(ints(&replies[7]), [-6], "quantity 0");

    let f = figures(&s).await;
    assert_eq!(f.stock, Some(0));
    let reserved = [
        (batch[0].order, 1),
        (batch[3].order, 2),
        (batch[5].order, 2),
    ];
    assert_eq!(f.ledger, reserved.into_iter().collect());
    assert_eq!(f.outbox, 3);
    let held = [("a".into(), 1), ("b".into(), 2), ("c".into(), 2)];
    assert_eq!(f.buyers, held.into(), "units held per user");
    let l = ledger(&s).await;
    let mut state = [l.ledger_keys(), l.buyer_keys(), vec![l.keys.outbox.clone()]].concat();
    if !l.is_compact() {
        let idem: u64 = redis::AsyncCommands::hlen(&mut s.redis().get(), &l.keys.idem)
            .await
            .unwrap();
        assert_eq!(idem, 1, "one key remembered");
        state.push(l.keys.idem.clone());
    }
    expire_with_the_sale(&s, &state).await;
}

async fn a_wrong_argument_count_is_refused_and_writes_nothing(version: &str) {
    let s = warm(version, 5, 2).await;
    let before = figures(&s).await;
    let err = deduct_batch(&s, version, UID, &[req(version, "a", "1", "")], 2)
        .await
        .expect_err("n = 2 with one request's arguments");
    let script = label(&s, ScriptKind::Deduct, version);
    assert!(err.to_string().contains(&script), "{script}: {err}");
    let err = deduct_batch(&s, version, "", &[req(version, "a", "1", "")], 1)
        .await
        .expect_err("no uid");
    assert!(err.to_string().contains(&script), "{script}: {err}");
    assert_eq!(figures(&s).await, before);
}

async fn not_warmed_to_each(version: &str) {
    let s = service().await;
    let batch = [req(version, "a", "1", "k"), req(version, "b", "1", "")];
    let replies = deduct_batch(&s, version, UID, &batch, 2).await.unwrap();
    assert_eq!(all_ints(&replies), [[-1], [-1]]);
}

/// Sent again (a retry of a whole call), a batch takes nothing more: a request without a key
/// answers RESERVED (its order id is known), one with a key its first order (v4: RESERVED as
/// well, v5: REPLAYED, since there the key is the order id).
async fn a_batch_sent_twice_reserves_once(version: &str) {
    let s = warm(version, 5, 2).await;
    let batch = [
        req(version, "a", "1", "k"),
        req(version, "b", "2", ""),
        req(version, "c", "1", ""),
    ];
    let first = deduct_batch(&s, version, UID, &batch, 3).await.unwrap();
    assert_eq!(all_ints(&first), [[1, 4], [1, 2], [1, 1]]);
    let after_first = figures(&s).await;
    let again = deduct_batch(&s, version, UID, &batch, 3).await.unwrap();
    if ledger(&s).await.is_compact() {
        assert_eq!(replayed(&again[0]), (batch[0].order, 1));
    } else {
        assert_eq!(ints(&again[0]), [1, 1]);
    }
    assert_eq!(all_ints(&again[1..]), [[1, 1], [1, 1]]);
    assert_eq!(figures(&s).await, after_first, "nothing more taken");
    assert_eq!(after_first.buyers["b"], 2);
}

async fn a_fractional_quantity_is_refused_alone(version: &str) {
    let s = warm(version, 5, 2).await;
    let batch = [req(version, "a", "1.5", ""), req(version, "b", "1", "")];
    let replies = deduct_batch(&s, version, UID, &batch, 2).await.unwrap();
    assert_eq!(all_ints(&replies), [vec![-6], vec![1, 4]]);
}

/// 300 concurrent requests of 120 buyers for 100 units: exactly the stock is reserved, nobody
/// holds more than the limit, and requests shared script calls.
async fn concurrent_buys_share_calls_and_never_oversell(version: &str) {
    let s = warm(version, 100, 2).await;
    let requests = 300;
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let (s, version) = (s.clone(), version.to_string());
            tokio::spawn(
                async move { deduct(&s, &version, &format!("u{}", i % 120), 1, None).await },
            )
        })
        .collect();
    let mut reserved = 0;
    for t in tasks {
        match t.await.unwrap().1 {
            DeductOutcome::Reserved { .. } => reserved += 1,
            DeductOutcome::SoldOut { remaining: 0 } | DeductOutcome::LimitExceeded { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(reserved, 100, "exactly the stock");
    let f = figures(&s).await;
    assert_eq!((f.stock, f.ledger.len()), (Some(0), 100));
    assert!(f.buyers.values().all(|&units| units <= 2), "{f:?}");
    f.assert_balanced(100);
    let calls = s
        .scripts()
        .metrics()
        .scripts
        .deduct_batch_size
        .get_sample_count();
    assert!(
        calls < requests as u64,
        "{requests} concurrent requests took {calls} script calls: none were batched"
    );
}
