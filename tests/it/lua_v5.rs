//! The v5 scripts (the compact ledger) tested directly against Redis: deduct.v5 writes entries
//! where the Rust side looks for them and keeps every bucket listpack-encoded, a key's retry is
//! its derived order, release.v5 marks the entry, restore.v5 and prewarm.v5 rebuild and guard
//! the buckets.

use std::collections::BTreeMap;

use chrono::Utc;
use redis::AsyncCommands;
use seckill::stock::{
    DeductOutcome, DeductRequest, PrewarmItem, PrewarmMode, PrewarmOutcome, ReleaseOutcome,
    RestoreTarget, StockService,
    compact::{self, CompactEntry},
    ledger::ItemLedger,
};
use uuid::Uuid;

use crate::lua_scripts::{item, service};

fn v5(stock: u64, limit: u32) -> PrewarmItem {
    PrewarmItem {
        script_version: "v5".into(),
        ..item(stock, limit, -1_000, 60_000)
    }
}

/// A request of `qty` for `user` through deduct.v5, with the buy path's order id rule.
async fn reserve(
    s: &StockService,
    user: &str,
    qty: u32,
    key: Option<&str>,
) -> (Uuid, DeductOutcome) {
    let order_id = match key {
        Some(k) => compact::derived_order_id("uid-1", 1, user, k),
        None => compact::in_buyers_bucket(Uuid::now_v7(), user),
    };
    let out = s
        .deduct(&DeductRequest {
            sale_id: 1,
            item_id: 1,
            script_version: "v5",
            sale_uid: "uid-1",
            user_id: user,
            quantity: qty,
            order_id,
            payload: b"",
            reserved_at_ms: 1_764_197_000_123,
            idempotency_key: key,
        })
        .await
        .unwrap();
    (order_id, out)
}

async fn ledger(s: &StockService) -> ItemLedger {
    ItemLedger::open(&mut s.redis().get(), s.keys().item(1, 1), 1, 1)
        .await
        .unwrap()
}

/// Stock, released total (meta), entries (meta).
async fn figures(s: &StockService) -> (i64, i64, i64) {
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    let stock: i64 = conn.get(&keys.stock).await.unwrap();
    let (released, entries): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
        .arg(&keys.meta)
        .arg("released_units")
        .arg("entries")
        .query_async(&mut conn)
        .await
        .unwrap();
    (stock, released.unwrap_or(0), entries.unwrap_or(0))
}

#[tokio::test]
async fn entries_land_in_the_buckets_rust_computes_and_stay_listpacks() {
    let s = service().await;
    s.prewarm(&v5(500, 2), PrewarmMode::Warm).await.unwrap();
    let l = ledger(&s).await;
    assert!(l.is_compact());
    assert_eq!(l.ledger_keys().len(), 16, "one bucket per 32 units");
    let mut ids = BTreeMap::new();
    let mut tasks = Vec::new();
    for u in 0..300 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("user {u}");
            let key = (u % 3 == 0).then(|| format!("key-{u}"));
            let (id, out) = reserve(&s, &user, 1, key.as_deref()).await;
            assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
            (id, user, key)
        }));
    }
    for t in tasks {
        let (id, user, key) = t.await.unwrap();
        ids.insert(id, (user, key));
    }
    let mut conn = s.redis().get();
    for (id, (user, key)) in &ids {
        let (bucket, field) = l.locate(id);
        let raw: Vec<u8> = conn.hget(&bucket, &field).await.unwrap();
        let entry = CompactEntry::decode(&raw).unwrap();
        assert_eq!(
            (&entry.user_id, &entry.idempotency_key, entry.quantity),
            (user, key, 1)
        );
        assert_eq!(entry.reserved_at_ms, 1_764_197_000_123);
        assert_eq!(
            l.buyer_key(user),
            bucket,
            "{user} shares a bucket with their order"
        );
        let held: i64 = conn
            .hget(l.buyer_key(user), l.buyer_field(user))
            .await
            .unwrap();
        assert_eq!(held, 1, "{user}'s units are in the bucket Rust computes");
        let event = l.event(*id, &raw).unwrap();
        assert_eq!((event.price_cents, event.item_id), (100, 1));
    }
    for key in l.ledger_keys().iter().chain(&l.buyer_keys()) {
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(encoding, "listpack", "{key}");
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0, "{key} expires with the sale");
    }
    assert_eq!(figures(&s).await, (200, 0, 300));
    assert_eq!(s.snapshot(1, 1).await.unwrap().reservations, 300);
    assert_eq!(l.all_events(&mut conn).await.unwrap().len(), 300);

    // A retry with the same key is its first order, even for another quantity.
    let (id, out) = reserve(&s, "user 3", 2, Some("key-3")).await;
    assert_eq!(
        out,
        DeductOutcome::Replayed {
            order_id: id,
            quantity: 1
        }
    );
    let knows = s.knows_key(&meta(), "user 3", "key-3").await.unwrap();
    assert!(knows, "the key's derived order is found");
    // A resent request without a key (same order id) reserves nothing more.
    let (first, _) = ids.iter().find(|(_, (_, k))| k.is_none()).unwrap();
    let user = ids[first].0.clone();
    let again = s
        .deduct(&DeductRequest {
            sale_id: 1,
            item_id: 1,
            script_version: "v5",
            sale_uid: "uid-1",
            user_id: &user,
            quantity: 1,
            order_id: *first,
            payload: b"",
            reserved_at_ms: 0,
            idempotency_key: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(again, DeductOutcome::Reserved { remaining: 200, .. }),
        "{again:?}"
    );
    assert_eq!(figures(&s).await, (200, 0, 300));
}

fn meta() -> seckill::store::sales::ItemMeta {
    seckill::store::sales::ItemMeta {
        sale_id: 1,
        item_id: 1,
        price_cents: 100,
        per_user_limit: 2,
        starts_at: Utc::now(),
        ends_at: Utc::now(),
        script_version: "v5".into(),
        sale_uid: "uid-1".into(),
    }
}

#[tokio::test]
async fn release_marks_the_entry_and_gives_units_back_once() {
    let s = service().await;
    s.prewarm(&v5(10, 3), PrewarmMode::Warm).await.unwrap();
    let (a, _) = reserve(&s, "u", 2, Some("k")).await;
    let (b, _) = reserve(&s, "u", 1, None).await;
    let release = |ids: Vec<Uuid>, uid: &'static str| {
        let s = s.clone();
        async move { s.release(1, 1, "v5", uid, &ids).await.unwrap() }
    };
    assert_eq!(
        release(vec![a, Uuid::now_v7(), a], "uid-1").await,
        [
            ReleaseOutcome::Released { units: 2 },
            ReleaseOutcome::NotInLedger,
            ReleaseOutcome::Already { units: 2 }
        ]
    );
    assert_eq!(figures(&s).await, (9, 2, 2));
    let l = ledger(&s).await;
    let mut conn = s.redis().get();
    let buyers = l.all_buyers(&mut conn).await.unwrap();
    assert_eq!(buyers.get("u"), Some(&1));
    let (bucket, field) = l.locate(&a);
    let raw: Vec<u8> = conn.hget(&bucket, &field).await.unwrap();
    assert!(CompactEntry::decode(&raw).unwrap().released);
    assert_eq!(
        release(vec![a], "uid-1").await,
        [ReleaseOutcome::Already { units: 2 }]
    );
    assert_eq!(
        release(vec![b], "another-sale").await,
        [ReleaseOutcome::ForeignState]
    );
    assert_eq!(
        release(vec![b], "uid-1").await,
        [ReleaseOutcome::Released { units: 1 }]
    );
    assert_eq!(figures(&s).await, (10, 3, 2));
    assert!(
        l.all_buyers(&mut conn).await.unwrap().is_empty(),
        "the last unit frees the buyer"
    );
    // The key still answers its first order after the release, as v4's idempotency hash did.
    let (_, out) = reserve(&s, "u", 1, Some("k")).await;
    assert_eq!(
        out,
        DeductOutcome::Replayed {
            order_id: a,
            quantity: 2
        }
    );
    let empty = service().await;
    assert_eq!(
        empty.release(1, 1, "v5", "uid-1", &[a]).await.unwrap(),
        [ReleaseOutcome::NotWarmed]
    );
}

#[tokio::test]
async fn a_rebuild_writes_entries_to_their_buckets_under_the_token() {
    let s = service().await;
    let item = v5(200, 3);
    assert_eq!(
        s.prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t1")
            .await
            .unwrap(),
        PrewarmOutcome::RestoreBegun
    );
    let kept = Uuid::now_v7();
    let closed = Uuid::now_v7();
    let entry = |qty, released| CompactEntry {
        quantity: qty,
        reserved_at_ms: Utc::now().timestamp_millis(),
        idempotency_key: None,
        user_id: "u".into(),
        released,
    };
    let pairs = vec![
        (
            kept.as_bytes().to_vec(),
            entry(1, false).encode().into_bytes(),
        ),
        (
            closed.as_bytes().to_vec(),
            entry(2, true).encode().into_bytes(),
        ),
    ];
    let write = |target, pairs: Vec<(Vec<u8>, Vec<u8>)>, token: &'static str| {
        let s = s.clone();
        async move {
            s.restore_chunk(1, 1, "v5", token, target, &pairs)
                .await
                .unwrap()
        }
    };
    assert!(!write(RestoreTarget::Ledger, pairs.clone(), "stale").await);
    assert!(write(RestoreTarget::Ledger, pairs, "t1").await);
    assert!(
        write(
            RestoreTarget::Buyers,
            vec![(b"u".to_vec(), b"1".to_vec())],
            "t1"
        )
        .await
    );
    let bad = s
        .restore_chunk(
            1,
            1,
            "v5",
            "t1",
            RestoreTarget::Ledger,
            &[(b"short".to_vec(), b"1 1  u".to_vec())],
        )
        .await;
    assert!(
        bad.is_err(),
        "an id that is not 16 bytes is refused: {bad:?}"
    );
    assert_eq!(
        s.release(1, 1, "v5", "uid-1", &[closed]).await.unwrap(),
        [ReleaseOutcome::Recovering]
    );
    let mut rebuilt = item.clone();
    rebuilt.stock = 199;
    assert_eq!(
        s.prewarm_with_token(&rebuilt, PrewarmMode::RestoreEnd, "t1")
            .await
            .unwrap(),
        PrewarmOutcome::Restored { remaining: 199 }
    );
    assert_eq!(figures(&s).await, (199, 2, 2));
    assert_eq!(
        s.release(1, 1, "v5", "uid-1", &[closed, kept])
            .await
            .unwrap(),
        [
            ReleaseOutcome::Already { units: 2 },
            ReleaseOutcome::Released { units: 1 }
        ]
    );
    // Force is refused now that reservations exist; a fresh item's warm refuses buckets
    // without meta (state of unknown origin).
    assert!(matches!(
        s.prewarm(&item, PrewarmMode::Force).await.unwrap(),
        PrewarmOutcome::HasReservations { .. }
    ));
    let orphan = service().await;
    let l = ItemLedger {
        layout: seckill::stock::ledger::Layout::Compact {
            buckets: 4,
            price_cents: 0,
        },
        ..ledger(&orphan).await
    };
    let _: () = orphan
        .redis()
        .get()
        .hset(&l.ledger_keys()[3], "x", "y")
        .await
        .unwrap();
    assert_eq!(
        orphan
            .prewarm(&v5(200, 3), PrewarmMode::Warm)
            .await
            .unwrap(),
        PrewarmOutcome::ForeignState
    );
}

#[tokio::test]
async fn a_huge_item_warms_with_a_capped_number_of_buckets() {
    let s = service().await;
    assert_eq!(
        s.prewarm(&v5(1_000_000_000, 5), PrewarmMode::Warm)
            .await
            .unwrap(),
        PrewarmOutcome::Warmed {
            remaining: 1_000_000_000
        }
    );
    let l = ledger(&s).await;
    assert_eq!(l.ledger_keys().len(), compact::MAX_BUCKETS as usize);
    let (_, out) = reserve(&s, "u", 1, None).await;
    assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
    assert!(matches!(
        s.prewarm(&v5(1_000_000_000, 5), PrewarmMode::Refresh)
            .await
            .unwrap(),
        PrewarmOutcome::Refreshed { .. }
    ));
}
