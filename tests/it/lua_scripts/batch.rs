//! deduct.v2's batches: each request answered as if sent alone, and the lanes that gather them.

use std::time::Duration;

use redis::AsyncCommands;
use seckill::stock::{
    DeductOutcome, DeductRequest, PrewarmMode, StockError, StockService, scripts::ScriptKind,
};
use uuid::Uuid;

use super::{deduct_with, ints, item, service};

/// Sends one hand-built batch `(user, quantity, order id, idempotency key)` to deduct.v2.
async fn deduct_batch(
    s: &StockService,
    requests: &[(&str, &str, String, &str)],
    claimed_n: usize,
) -> redis::RedisResult<Vec<Vec<redis::Value>>> {
    let script = s.scripts().get(ScriptKind::Deduct, "v2").unwrap().clone();
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    s.scripts()
        .invoke(&mut conn, &script, &keys.as_script_keys(), |cmd| {
            cmd.arg(claimed_n);
            for (user, qty, order_id, idem) in requests {
                let payload = format!("{{\"order\":\"{order_id}\",\"qty\":{qty}}}");
                cmd.arg(*user)
                    .arg(*qty)
                    .arg(order_id)
                    .arg(payload)
                    .arg(*idem);
            }
        })
        .await
}

#[tokio::test]
async fn a_batch_answers_each_request_as_if_sent_alone_in_order() {
    let s = service().await;
    s.prewarm(&item(5, 2, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let ids: Vec<String> = (0..8).map(|_| Uuid::now_v7().to_string()).collect();
    let replies = deduct_batch(
        &s,
        &[
            ("a", "1", ids[0].clone(), "k"),
            ("a", "1", ids[1].clone(), "k"),
            ("a", "2", ids[2].clone(), ""),
            ("b", "2", ids[3].clone(), ""),
            ("", "1", ids[4].clone(), ""),
            ("c", "2", ids[5].clone(), ""),
            ("d", "1", ids[6].clone(), ""),
            ("a", "0", ids[7].clone(), ""),
        ],
        8,
    )
    .await
    .unwrap();
    assert_eq!(replies.len(), 8);
    assert_eq!(ints(&replies[0]), [1, 4], "reserved, 4 left");
    assert_eq!(
        replies[1][1],
        redis::Value::BulkString(ids[0].clone().into_bytes()),
        "a retry earlier in the same batch is replayed: {:?}",
        replies[1]
    );
    assert_eq!(replies[1][0], redis::Value::Int(2));
    assert_eq!(replies[1][2], redis::Value::Int(1));
    assert_eq!(ints(&replies[2]), [-4, 1, 2], "a holds 1 of at most 2");
    assert_eq!(ints(&replies[3]), [1, 2]);
    assert_eq!(ints(&replies[4]), [-6], "no user");
    assert_eq!(ints(&replies[5]), [1, 0]);
    assert_eq!(ints(&replies[6]), [-5, 0], "sold out within the batch");
    assert_eq!(ints(&replies[7]), [-6], "quantity 0");

    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let stock: i64 = conn.get(&keys.stock).await.unwrap();
    assert_eq!(stock, 0);
    let mut ledger: Vec<String> = conn.hkeys(&keys.ledger).await.unwrap();
    ledger.sort();
    let mut reserved = vec![ids[0].clone(), ids[3].clone(), ids[5].clone()];
    reserved.sort();
    assert_eq!(ledger, reserved);
    let outbox: u64 = conn.zcard(&keys.outbox).await.unwrap();
    assert_eq!(outbox, 3);
    let mut buyers: Vec<(String, i64)> = conn.hgetall(&keys.buyers).await.unwrap();
    buyers.sort();
    assert_eq!(
        buyers,
        [("a".into(), 1), ("b".into(), 2), ("c".into(), 2)],
        "units held per user"
    );
    let idem: u64 = conn.hlen(&keys.idem).await.unwrap();
    assert_eq!(idem, 1);
    let expire_at: i64 = conn.hget(&keys.meta, "expire_at_ms").await.unwrap();
    for key in [&keys.buyers, &keys.ledger, &keys.outbox, &keys.idem] {
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(at, expire_at, "{key} expires with the sale");
    }
}

#[tokio::test]
async fn a_batch_with_a_wrong_argument_count_is_refused_and_writes_nothing() {
    let s = service().await;
    s.prewarm(&item(5, 2, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let id = Uuid::now_v7().to_string();
    let err = deduct_batch(&s, &[("a", "1", id, "")], 2)
        .await
        .expect_err("n = 2 with one request's arguments");
    assert!(err.to_string().contains("deduct.v2"), "{err}");
    let keys = s.keys().item(1, 1);
    let stock: i64 = s.redis().get().get(&keys.stock).await.unwrap();
    assert_eq!(stock, 5);
    let ledger: u64 = s.redis().get().hlen(&keys.ledger).await.unwrap();
    assert_eq!(ledger, 0);
}

#[tokio::test]
async fn a_batch_for_an_item_that_is_not_warmed_answers_not_warmed_to_each() {
    let s = service().await;
    let replies = deduct_batch(
        &s,
        &[
            ("a", "1", Uuid::now_v7().to_string(), "k"),
            ("b", "1", Uuid::now_v7().to_string(), ""),
        ],
        2,
    )
    .await
    .unwrap();
    assert_eq!(ints(&replies[0]), [-1]);
    assert_eq!(ints(&replies[1]), [-1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_buys_share_script_calls_and_never_oversell() {
    let s = service().await;
    s.prewarm(&item(100, 2, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let requests = 300;
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(
                async move { deduct_with("v2", &s, &format!("u{}", i % 120), 1, None).await },
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
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let stock: i64 = conn.get(&keys.stock).await.unwrap();
    let ledger: u64 = conn.hlen(&keys.ledger).await.unwrap();
    assert_eq!((stock, ledger), (0, 100));
    let buyers: Vec<(String, i64)> = conn.hgetall(&keys.buyers).await.unwrap();
    assert!(buyers.iter().all(|(_, units)| *units <= 2));
    assert_eq!(buyers.iter().map(|(_, u)| u).sum::<i64>(), 100);
    let calls = s.scripts().metrics().deduct_batch_size.get_sample_count();
    assert!(
        calls < requests as u64,
        "{requests} concurrent requests took {calls} script calls: none were batched"
    );
}

#[tokio::test]
async fn a_batch_sent_twice_reserves_once_and_answers_the_same() {
    let s = service().await;
    s.prewarm(&item(5, 2, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let batch = [
        ("a", "1", Uuid::now_v7().to_string(), "k"),
        ("b", "2", Uuid::now_v7().to_string(), ""),
        ("c", "1", Uuid::now_v7().to_string(), ""),
    ];
    let first = deduct_batch(&s, &batch, 3).await.unwrap();
    let again = deduct_batch(&s, &batch, 3).await.unwrap();
    assert_eq!(ints(&first[0]), [1, 4]);
    assert_eq!(ints(&first[2]), [1, 1]);
    for reply in &again {
        assert_eq!(ints(reply), [1, 1], "reserved before, nothing more taken");
    }
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let stock: i64 = conn.get(&keys.stock).await.unwrap();
    let ledger: u64 = conn.hlen(&keys.ledger).await.unwrap();
    let b: i64 = conn.hget(&keys.buyers, "b").await.unwrap();
    assert_eq!((stock, ledger, b), (1, 3, 2));
}

#[tokio::test]
async fn a_fractional_quantity_is_refused_alone_and_the_rest_of_its_batch_proceeds() {
    let s = service().await;
    s.prewarm(&item(5, 2, -1_000, 60_000), PrewarmMode::Warm)
        .await
        .unwrap();
    let replies = deduct_batch(
        &s,
        &[
            ("a", "1.5", Uuid::now_v7().to_string(), ""),
            ("b", "1", Uuid::now_v7().to_string(), ""),
        ],
        2,
    )
    .await
    .unwrap();
    assert_eq!(ints(&replies[0]), [-6]);
    assert_eq!(ints(&replies[1]), [1, 4]);
}

#[test]
fn lanes_of_a_runtime_that_ended_are_started_again() {
    let first = tokio::runtime::Runtime::new().unwrap();
    let s = first.block_on(async {
        let s = service().await;
        s.prewarm(&item(5, 2, -1_000, 60_000), PrewarmMode::Warm)
            .await
            .unwrap();
        let (_, out) = deduct_with("v2", &s, "a", 1, None).await;
        assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
        s
    });
    drop(first); // its lane tasks end with it
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        // The first runtime's Redis connections break with it and reconnect on use, so the
        // first tries may fail on Redis; none may fail because the lane is gone.
        let mut last = None;
        for _ in 0..20 {
            let order_id = Uuid::now_v7();
            let out = s
                .deduct(&DeductRequest {
                    sale_id: 1,
                    item_id: 1,
                    script_version: "v2",
                    sale_uid: "uid-1",
                    user_id: "b",
                    quantity: 1,
                    order_id,
                    payload: b"{}",
                    reserved_at_ms: 0,
                    idempotency_key: None,
                })
                .await;
            assert!(
                !matches!(out, Err(StockError::Stopped)),
                "the lane was not restarted"
            );
            if let Ok(DeductOutcome::Reserved { .. }) = out {
                return;
            }
            last = Some(format!("{out:?}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no reservation after the restart: {last:?}");
    });
}
