//! The v4 scripts' own codes, tested directly against Redis: release.v4 (units back once per
//! order), prewarm.v4 and restore.v4 (the released record in a rebuild).

use redis::AsyncCommands;
use seckill::stock::{
    DeductOutcome, PrewarmItem, PrewarmMode, PrewarmOutcome, ReleaseOutcome, RestoreTarget,
    StockService, scripts::ScriptKind,
};
use uuid::Uuid;

use crate::lua_scripts::{item, service};

fn v4(stock: u64, limit: u32) -> PrewarmItem {
    PrewarmItem {
        script_version: "v4".into(),
        ..item(stock, limit, -1_000, 60_000)
    }
}

/// A reservation of `qty` for `user` through deduct (v4 runs deduct.v3); its order id.
async fn reserve(s: &StockService, user: &str, qty: u32) -> Uuid {
    let order_id = Uuid::now_v7();
    let payload =
        seckill::kafka::events::OrderReserved::new(order_id, 1, 1, user, qty, 100, 0).to_bytes();
    let out = s
        .deduct(&seckill::stock::DeductRequest {
            sale_id: 1,
            item_id: 1,
            script_version: "v4",
            sale_uid: "uid-1",
            user_id: user,
            quantity: qty,
            order_id,
            payload: &payload,
            reserved_at_ms: 0,
            idempotency_key: None,
        })
        .await
        .unwrap();
    assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
    order_id
}

async fn release(s: &StockService, uid: &str, ids: &[Uuid]) -> Vec<ReleaseOutcome> {
    s.release(1, 1, "v4", uid, ids).await.unwrap()
}

/// Stock, buyer's units, released total (meta), released entries.
async fn figures(s: &StockService, user: &str) -> (i64, Option<i64>, i64, u64) {
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let stock: i64 = conn.get(&keys.stock).await.unwrap();
    let held: Option<i64> = conn.hget(&keys.buyers, user).await.unwrap();
    let total: Option<i64> = conn.hget(&keys.meta, "released_units").await.unwrap();
    let entries: u64 = conn.hlen(&keys.released).await.unwrap();
    (stock, held, total.unwrap_or(0), entries)
}

#[tokio::test]
async fn release_gives_units_back_once_per_order() {
    let s = service().await;
    s.prewarm(&v4(10, 3), PrewarmMode::Warm).await.unwrap();
    let a = reserve(&s, "u", 2).await;
    let b = reserve(&s, "u", 1).await;
    assert_eq!(figures(&s, "u").await, (7, Some(3), 0, 0));

    let unknown = Uuid::now_v7();
    assert_eq!(
        release(&s, "uid-1", &[a, unknown]).await,
        [
            ReleaseOutcome::Released { units: 2 },
            ReleaseOutcome::NotInLedger
        ]
    );
    assert_eq!(figures(&s, "u").await, (9, Some(1), 2, 1));
    // Asked again (a redelivery, a sweep after a crash): nothing changes.
    assert_eq!(
        release(&s, "uid-1", &[a, a]).await,
        [
            ReleaseOutcome::Already { units: 2 },
            ReleaseOutcome::Already { units: 2 }
        ]
    );
    assert_eq!(figures(&s, "u").await, (9, Some(1), 2, 1));
    // The same order twice in one call counts once; the buyer's last unit goes too.
    assert_eq!(
        release(&s, "uid-1", &[b, b]).await,
        [
            ReleaseOutcome::Released { units: 1 },
            ReleaseOutcome::Already { units: 1 }
        ]
    );
    assert_eq!(figures(&s, "u").await, (10, None, 3, 2));
    // initial == stock + ledger - released
    let keys = s.keys().item(1, 1);
    let ledger: u64 = s.redis().get().hlen(&keys.ledger).await.unwrap();
    assert_eq!(ledger, 2, "the ledger keeps every reservation");
    let ttl: i64 = s.redis().get().pttl(&keys.released).await.unwrap();
    assert!(ttl > 0, "released expires with the sale");
    // The units sell again, within the buyer's limit of 3.
    reserve(&s, "u", 3).await;
}

#[tokio::test]
async fn release_refuses_without_this_sales_state() {
    let empty = service().await;
    assert_eq!(
        release(&empty, "uid-1", &[Uuid::now_v7()]).await,
        [ReleaseOutcome::NotWarmed]
    );
    let s = service().await;
    s.prewarm(&v4(10, 3), PrewarmMode::Warm).await.unwrap();
    let a = reserve(&s, "u", 1).await;
    assert_eq!(
        release(&s, "another-sale", &[a]).await,
        [ReleaseOutcome::ForeignState]
    );
    assert_eq!(figures(&s, "u").await, (9, Some(1), 0, 0));
    let script = s.scripts().get(ScriptKind::Release, "v4").unwrap().clone();
    let keys = s.keys().item(1, 1);
    let err = s
        .scripts()
        .invoke::<Vec<redis::Value>>(
            &mut s.redis().get(),
            &script,
            &keys.as_script_keys(),
            |cmd| {
                cmd.arg("uid-1");
            },
        )
        .await
        .expect_err("no order ids");
    assert!(err.to_string().contains("release.v4"), "{err}");
    assert!(s.scripts().get(ScriptKind::Release, "v3").is_err(), "v4 on");
}

#[tokio::test]
async fn a_rebuild_restores_the_released_record_and_release_waits_for_it() {
    let s = service().await;
    let item = v4(10, 3);
    assert_eq!(
        s.prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t1")
            .await
            .unwrap(),
        PrewarmOutcome::RestoreBegun
    );
    let closed = Uuid::now_v7();
    let event = seckill::kafka::events::OrderReserved::new(closed, 1, 1, "u", 2, 100, 0);
    s.restore_chunk(
        1,
        1,
        "v4",
        "t1",
        RestoreTarget::Ledger,
        &[(closed.to_string().into_bytes(), event.to_bytes())],
    )
    .await
    .unwrap();
    assert!(
        s.restore_chunk(
            1,
            1,
            "v4",
            "t1",
            RestoreTarget::Released,
            &[(closed.to_string().into_bytes(), b"2".to_vec())],
        )
        .await
        .unwrap()
    );
    assert_eq!(
        release(&s, "uid-1", &[closed]).await,
        [ReleaseOutcome::Recovering],
        "no release while a rebuild runs"
    );
    let mut rebuilt = item.clone();
    rebuilt.stock = 10;
    s.prewarm_with_token(&rebuilt, PrewarmMode::RestoreEnd, "t1")
        .await
        .unwrap();
    assert_eq!(figures(&s, "u").await, (10, None, 2, 1));
    // The closed order was released before the loss: it is not released a second time.
    assert_eq!(
        release(&s, "uid-1", &[closed]).await,
        [ReleaseOutcome::Already { units: 2 }]
    );
    assert_eq!(figures(&s, "u").await.0, 10);
    // A forced warm before the start would clear the released record with the rest.
    let fresh = service().await;
    let mut upcoming = v4(5, 1);
    upcoming.starts_at_ms += 60_000;
    upcoming.ends_at_ms += 60_000;
    fresh.prewarm(&upcoming, PrewarmMode::Warm).await.unwrap();
    let keys = fresh.keys().item(1, 1);
    let _: () = fresh
        .redis()
        .get()
        .hset(&keys.released, "x", 1)
        .await
        .unwrap();
    fresh.prewarm(&upcoming, PrewarmMode::Force).await.unwrap();
    let left: u64 = fresh.redis().get().hlen(&keys.released).await.unwrap();
    assert_eq!(left, 0);
}
