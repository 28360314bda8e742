//! The v3 scripts' own codes, tested directly against Redis: prewarm.v3 (identity, rebuild
//! modes), restore.v3 (chunks under a token) and what deduct.v3 adds to v2 (another sale's
//! state, a rebuild in progress).

use redis::AsyncCommands;
use seckill::stock::{
    PrewarmItem, PrewarmMode, PrewarmOutcome, RestoreTarget, StockService, scripts::ScriptKind,
};
use uuid::Uuid;

use crate::lua_scripts::{ints, item, service};

/// An item of a v3 sale with uid `uid`.
fn v3(uid: &str, stock: u64) -> PrewarmItem {
    PrewarmItem {
        script_version: "v3".into(),
        sale_uid: uid.into(),
        ..item(stock, 2, -1_000, 60_000)
    }
}

/// One deduct.v3 call for `requests` (user, quantity, order id, idempotency key) under `uid`.
async fn deduct_v3(
    s: &StockService,
    uid: &str,
    requests: &[(&str, &str, String, &str)],
) -> redis::RedisResult<Vec<Vec<redis::Value>>> {
    let script = s.scripts().get(ScriptKind::Deduct, "v3").unwrap().clone();
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    s.scripts()
        .invoke(&mut conn, &script, &keys.as_script_keys(), |cmd| {
            cmd.arg(uid).arg(requests.len());
            for (user, qty, order_id, idem) in requests {
                cmd.arg(*user)
                    .arg(*qty)
                    .arg(order_id)
                    .arg(format!("{{\"order\":\"{order_id}\"}}"))
                    .arg(*idem);
            }
        })
        .await
}

fn one(user: &str) -> (&str, &'static str, String, &'static str) {
    (user, "1", Uuid::now_v7().to_string(), "")
}

async fn stock_of(s: &StockService) -> Option<i64> {
    s.redis()
        .get()
        .get(&s.keys().item(1, 1).stock)
        .await
        .unwrap()
}

#[tokio::test]
async fn prewarm_v3_stamps_the_sale_and_refuses_another_sales_state() {
    let s = service().await;
    let mine = v3("sale-a", 10);
    assert_eq!(
        s.prewarm(&mine, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::Warmed { remaining: 10 }
    );
    let state = s.state(1, 1).await.unwrap();
    assert_eq!(state.sale_uid.as_deref(), Some("sale-a"));
    assert!(state.present && !state.restoring);
    assert_eq!(
        s.prewarm(&mine, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::AlreadyWarmed { remaining: 10 }
    );
    // Another sale with the same ids (another database, a restored backup): every mode refuses
    // and nothing changes.
    let theirs = v3("sale-b", 99);
    for mode in [
        PrewarmMode::Warm,
        PrewarmMode::Force,
        PrewarmMode::Refresh,
        PrewarmMode::RestoreBegin,
    ] {
        assert_eq!(
            s.prewarm_with_token(&theirs, mode, "t").await.unwrap(),
            PrewarmOutcome::ForeignState,
            "{mode:?}"
        );
    }
    assert_eq!(stock_of(&s).await, Some(10));
    assert_eq!(
        s.state(1, 1).await.unwrap().sale_uid.as_deref(),
        Some("sale-a")
    );
    assert_eq!(
        s.prewarm(&mine, PrewarmMode::Refresh).await.unwrap(),
        PrewarmOutcome::Refreshed { remaining: 10 }
    );
    let mut gone = v3("sale-a", 10);
    gone.expire_at_ms = chrono::Utc::now().timestamp_millis() - 1;
    assert_eq!(
        s.prewarm(&gone, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::BadExpiry
    );
    let mut anonymous = v3("", 10);
    anonymous.sale_uid.clear();
    assert_eq!(
        s.prewarm(&anonymous, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::BadArgument
    );
}

#[tokio::test]
async fn keys_without_meta_are_state_of_unknown_origin_and_are_not_warmed_over() {
    let s = service().await;
    let keys = s.keys().item(1, 1);
    let _: () = s.redis().get().set(&keys.stock, 3).await.unwrap();
    assert_eq!(
        s.prewarm(&v3("sale-a", 10), PrewarmMode::Warm)
            .await
            .unwrap(),
        PrewarmOutcome::ForeignState
    );
    assert_eq!(
        s.prewarm_with_token(&v3("sale-a", 10), PrewarmMode::RestoreBegin, "t")
            .await
            .unwrap(),
        PrewarmOutcome::ForeignState
    );
    assert_eq!(stock_of(&s).await, Some(3));
}

#[tokio::test]
async fn a_rebuild_runs_under_its_token_and_buys_wait_for_its_end() {
    let s = service().await;
    let item = v3("sale-a", 10);
    assert_eq!(
        s.prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t1")
            .await
            .unwrap(),
        PrewarmOutcome::RestoreBegun
    );
    assert!(s.state(1, 1).await.unwrap().restoring);
    // Meanwhile: every buy is answered RECOVERING, a warm is refused.
    let replies = deduct_v3(&s, "sale-a", &[one("a"), one("b")])
        .await
        .unwrap();
    assert_eq!(
        replies.iter().map(|r| ints(r)).collect::<Vec<_>>(),
        [[-8], [-8]]
    );
    assert_eq!(
        s.prewarm(&item, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::Restoring
    );

    // Chunks under the token.
    let order = Uuid::now_v7().to_string();
    let chunk = |target, pairs: Vec<(&str, &str)>| {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .into_iter()
            .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let s = s.clone();
        async move {
            s.restore_chunk(1, 1, "v3", "t1", target, &pairs)
                .await
                .unwrap()
        }
    };
    assert!(chunk(RestoreTarget::Ledger, vec![(&order, "{}")]).await);
    assert!(chunk(RestoreTarget::Buyers, vec![("a", "2")]).await);
    assert!(chunk(RestoreTarget::Idempotency, vec![("a\0k", "x 2")]).await);
    // Another token (a rebuild that lost the race) writes nothing.
    assert!(
        !s.restore_chunk(
            1,
            1,
            "v3",
            "t0",
            RestoreTarget::Buyers,
            &[("a".into(), b"9".to_vec())]
        )
        .await
        .unwrap()
    );
    assert_eq!(
        s.prewarm_with_token(&item, PrewarmMode::RestoreEnd, "t0")
            .await
            .unwrap(),
        PrewarmOutcome::NotRestoring
    );
    let mut rebuilt = item.clone();
    rebuilt.stock = 8;
    assert_eq!(
        s.prewarm_with_token(&rebuilt, PrewarmMode::RestoreEnd, "t1")
            .await
            .unwrap(),
        PrewarmOutcome::Restored { remaining: 8 }
    );
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let held: i64 = conn.hget(&keys.buyers, "a").await.unwrap();
    assert_eq!(held, 2);
    let initial: i64 = conn.hget(&keys.meta, "initial_stock").await.unwrap();
    assert_eq!(initial, 10);
    let expire_at: i64 = conn.hget(&keys.meta, "expire_at_ms").await.unwrap();
    for key in [&keys.stock, &keys.buyers, &keys.ledger, &keys.idem] {
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(at, expire_at, "{key} expires with the sale");
    }
    // It sells again, with the rebuilt buyer's units counted against the limit of 2.
    let replies = deduct_v3(&s, "sale-a", &[one("a"), one("b")])
        .await
        .unwrap();
    assert_eq!(ints(&replies[0]), [-4, 2, 2]);
    assert_eq!(ints(&replies[1]), [1, 7]);
    // A warmed item is not rebuilt over.
    assert_eq!(
        s.prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t2")
            .await
            .unwrap(),
        PrewarmOutcome::AlreadyWarmed { remaining: 7 }
    );
}

#[tokio::test]
async fn a_rebuild_started_again_clears_what_the_interrupted_one_wrote() {
    let s = service().await;
    let item = v3("sale-a", 10);
    s.prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t1")
        .await
        .unwrap();
    s.restore_chunk(
        1,
        1,
        "v3",
        "t1",
        RestoreTarget::Ledger,
        &[("stale".into(), b"{}".to_vec())],
    )
    .await
    .unwrap();
    assert_eq!(
        s.prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t2")
            .await
            .unwrap(),
        PrewarmOutcome::RestoreBegun
    );
    let ledger: u64 = s
        .redis()
        .get()
        .hlen(&s.keys().item(1, 1).ledger)
        .await
        .unwrap();
    assert_eq!(ledger, 0);
}

#[tokio::test]
async fn restore_refuses_a_bad_chunk() {
    let s = service().await;
    s.prewarm_with_token(&v3("sale-a", 10), PrewarmMode::RestoreBegin, "t1")
        .await
        .unwrap();
    let script = s.scripts().get(ScriptKind::Restore, "v3").unwrap().clone();
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    for args in [
        vec!["t1", "stock", "f", "v"],
        vec!["t1", "ledger", "f"],
        vec!["t1", "ledger"],
    ] {
        let reply: Vec<redis::Value> = s
            .scripts()
            .invoke(&mut conn, &script, &keys.as_script_keys(), |cmd| {
                for a in &args {
                    cmd.arg(*a);
                }
            })
            .await
            .unwrap();
        assert_eq!(ints(&reply), [-2, 0], "{args:?}");
    }
    // Versions before v3 have no restore script.
    assert!(s.scripts().get(ScriptKind::Restore, "v2").is_err());
}

#[tokio::test]
async fn deduct_v3_refuses_another_sales_state_and_changes_nothing() {
    let s = service().await;
    s.prewarm(&v3("sale-a", 5), PrewarmMode::Warm)
        .await
        .unwrap();
    let replies = deduct_v3(&s, "sale-b", &[one("a"), one("b")])
        .await
        .unwrap();
    assert_eq!(
        replies.iter().map(|r| ints(r)).collect::<Vec<_>>(),
        [[-7], [-7]]
    );
    assert_eq!(stock_of(&s).await, Some(5));
    let ledger: u64 = s
        .redis()
        .get()
        .hlen(&s.keys().item(1, 1).ledger)
        .await
        .unwrap();
    assert_eq!(ledger, 0);
    // Its own sale buys as v2 would.
    let replies = deduct_v3(&s, "sale-a", &[one("a"), one("a"), one("a")])
        .await
        .unwrap();
    assert_eq!(ints(&replies[0]), [1, 4]);
    assert_eq!(ints(&replies[1]), [1, 3]);
    assert_eq!(ints(&replies[2]), [-4, 2, 2]);
    // An item without state answers NOT_WARMED; a wrong argument count is an error.
    let empty = service().await;
    let replies = deduct_v3(&empty, "sale-a", &[one("a")]).await.unwrap();
    assert_eq!(ints(&replies[0]), [-1]);
    let script = s.scripts().get(ScriptKind::Deduct, "v3").unwrap().clone();
    let keys = s.keys().item(1, 1);
    let err = s
        .scripts()
        .invoke::<Vec<redis::Value>>(
            &mut s.redis().get(),
            &script,
            &keys.as_script_keys(),
            |cmd| {
                cmd.arg("sale-a")
                    .arg(2)
                    .arg("a")
                    .arg(1)
                    .arg("id")
                    .arg("{}")
                    .arg("");
            },
        )
        .await
        .expect_err("n = 2 with one request's arguments");
    assert!(err.to_string().contains("deduct.v3"), "{err}");
}
