//! Each Lua script's documented return codes, tested directly against Redis.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use redis::AsyncCommands;
use seckill::{
    config::RedisSettings,
    lock::{LeaderElection, RedisLock},
    metrics::Metrics,
    redis_pool::RedisPool,
    stock::{
        DeductOutcome, DeductRequest, Keys, PrewarmItem, PrewarmMode, PrewarmOutcome,
        ScriptRegistry, StockError, StockService, scripts::ScriptKind,
    },
};
use uuid::Uuid;

use crate::helpers::{STACK, unique};

pub(crate) async fn service() -> StockService {
    let redis = RedisPool::connect(&RedisSettings {
        url: STACK.redis_url.clone(),
        pool_size: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let scripts = Arc::new(ScriptRegistry::new(Arc::new(Metrics::new())));
    StockService::new(redis, Keys::new(&format!("t{}:", unique())), scripts)
}

pub(crate) fn item(stock: u64, limit: u32, starts_in_ms: i64, lasts_ms: i64) -> PrewarmItem {
    let now = Utc::now().timestamp_millis();
    PrewarmItem {
        sale_id: 1,
        item_id: 1,
        stock,
        per_user_limit: limit,
        price_cents: 100,
        starts_at_ms: now + starts_in_ms,
        ends_at_ms: now + starts_in_ms + lasts_ms,
        expire_at_ms: now + starts_in_ms + lasts_ms + 60_000,
        script_version: "v1".into(),
        sale_uid: "uid-1".into(),
        initial_stock: stock,
    }
}

async fn deduct(
    s: &StockService,
    user: &str,
    qty: u32,
    idem: Option<&str>,
) -> (Uuid, DeductOutcome) {
    deduct_with("v1", s, user, qty, idem).await
}

/// One request through the deduct script of `version` (v2 on: through the batching lanes).
async fn deduct_with(
    version: &str,
    s: &StockService,
    user: &str,
    qty: u32,
    idem: Option<&str>,
) -> (Uuid, DeductOutcome) {
    let order_id = Uuid::now_v7();
    let payload = format!("{{\"order\":\"{order_id}\",\"user\":\"{user}\",\"qty\":{qty}}}");
    let out = s
        .deduct(&DeductRequest {
            sale_id: 1,
            item_id: 1,
            script_version: version,
            sale_uid: "uid-1",
            user_id: user,
            quantity: qty,
            order_id,
            payload: payload.as_bytes(),
            idempotency_key: idem,
        })
        .await
        .unwrap();
    (order_id, out)
}

#[tokio::test]
async fn prewarm_return_codes() {
    let s = service().await;
    let live = item(10, 2, -1_000, 60_000);
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Refresh).await.unwrap(),
        PrewarmOutcome::NotWarmed
    );
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::Warmed { remaining: 10 }
    );
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::AlreadyWarmed { remaining: 10 }
    );
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Refresh).await.unwrap(),
        PrewarmOutcome::Refreshed { remaining: 10 }
    );
    let (_, out) = deduct(&s, "u1", 1, None).await;
    assert!(matches!(out, DeductOutcome::Reserved { remaining: 9, .. }));
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Force).await.unwrap(),
        PrewarmOutcome::HasReservations { remaining: 9 }
    );
    let mut expired = live.clone();
    expired.expire_at_ms = Utc::now().timestamp_millis() - 1;
    assert_eq!(
        s.prewarm(&expired, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::BadExpiry
    );
    let mut empty_window = live.clone();
    empty_window.ends_at_ms = empty_window.starts_at_ms;
    assert_eq!(
        s.prewarm(&empty_window, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::BadArgument
    );
    // A forced warm of an item without reservations overwrites it.
    let fresh = service().await;
    fresh.prewarm(&live, PrewarmMode::Warm).await.unwrap();
    let mut more = live.clone();
    more.stock = 50;
    assert_eq!(
        fresh.prewarm(&more, PrewarmMode::Force).await.unwrap(),
        PrewarmOutcome::Warmed { remaining: 50 }
    );
}

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
    let ledger: Vec<String> = conn.hkeys(&keys.ledger).await.unwrap();
    assert_eq!(ledger.len(), 2);
    let outbox: Vec<String> = conn.zrange(&keys.outbox, 0, -1).await.unwrap();
    assert_eq!(outbox.len(), 2, "each reservation waits for its Kafka ack");
    for key in [&keys.buyers, &keys.ledger, &keys.outbox, &keys.idem] {
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

#[tokio::test]
async fn warming_over_a_missing_stock_key_with_reservations_is_refused() {
    let s = service().await;
    let live = item(10, 2, -1_000, 60_000);
    s.prewarm(&live, PrewarmMode::Warm).await.unwrap();
    deduct(&s, "u1", 1, None).await;
    let keys = s.keys().item(1, 1);
    let _: i64 = s.redis().get().del(&keys.stock).await.unwrap();
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::HasReservations { remaining: 0 }
    );
    let buyers: i64 = s.redis().get().hlen(&keys.buyers).await.unwrap();
    assert_eq!(buyers, 1, "buyers kept");
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
    let entries: Vec<String> = conn.hvals(&keys.ledger).await.unwrap();
    let reserved: i64 = entries
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            v["qty"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(remaining, 0, "{version}: the stock runs out exactly");
    assert_eq!(remaining + reserved, 50, "{version}");
    let buyers: Vec<(String, i64)> = conn.hgetall(&keys.buyers).await.unwrap();
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
async fn lock_scripts_act_only_for_the_owner() {
    let s = service().await;
    let lock = RedisLock::new(s.redis().clone(), s.keys().clone(), s.scripts().clone());
    let a = lock
        .try_acquire("prewarm:s1", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("free lock");
    assert!(
        lock.try_acquire("prewarm:s1", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "held lock"
    );
    assert!(lock.renew(&a).await.unwrap());
    assert!(lock.release(&a).await.unwrap());
    assert!(
        !lock.release(&a).await.unwrap(),
        "second release is a no-op"
    );
    assert!(
        !lock.renew(&a).await.unwrap(),
        "a released lock cannot be renewed"
    );

    // An expired owner cannot release the next owner's lock.
    let short = lock
        .try_acquire("prewarm:s2", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = lock
        .try_acquire("prewarm:s2", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("expired lock is free");
    assert!(!lock.release(&short).await.unwrap());
    assert_eq!(
        lock.holder("prewarm:s2").await.unwrap().as_deref(),
        Some(next.token())
    );
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_dead_leaders_lock_expires() {
    let s = service().await;
    let lock = RedisLock::new(s.redis().clone(), s.keys().clone(), s.scripts().clone());
    let ttl = Duration::from_millis(300);
    let mut a = LeaderElection::new(lock.clone(), "job", ttl);
    let mut b = LeaderElection::new(lock.clone(), "job", ttl);
    assert!(a.ensure().await.unwrap());
    assert!(!b.ensure().await.unwrap());
    assert!(a.ensure().await.unwrap(), "the leader renews");
    // `a` dies without stepping down: after the ttl, `b` takes over and `a` learns it lost.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(b.ensure().await.unwrap());
    assert!(!a.ensure().await.unwrap());
    b.step_down().await;
    assert!(
        a.ensure().await.unwrap(),
        "stepping down frees the lock at once"
    );
}

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

pub(crate) fn ints(reply: &[redis::Value]) -> Vec<i64> {
    reply
        .iter()
        .map(|v| match v {
            redis::Value::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        })
        .collect()
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
