//! What only v5's compact ledger promises: entries and buyers in the buckets Rust computes,
//! each bucket a listpack, a release marked in its entry, a capped bucket count.

use seckill::stock::ItemRef;
use std::collections::BTreeMap;

use redis::AsyncCommands;
use seckill::stock::{
    DeductOutcome, PrewarmMode, PrewarmOutcome, RestoreTarget,
    compact::{self, CompactEntry},
    ledger::{ItemLedger, Layout},
};
use uuid::Uuid;

use super::{
    UID, begin_rebuild, deduct, figures, ledger, on_sale, order_id, release, reserve, restore,
    service, warm,
};

const V5: &str = "v5";

/// 300 buyers, a third with a key: each entry and each buyer's units are where Rust looks,
/// every bucket is a listpack that expires with the sale, meta counts the entries.
#[tokio::test]
async fn entries_land_in_the_buckets_rust_computes_and_stay_listpacks() {
    let s = warm(V5, 500, 2).await;
    let l = ledger(&s).await;
    assert!(l.is_compact());
    assert_eq!(l.ledger_keys().len(), 16, "one bucket per 32 units");
    let tasks: Vec<_> = (0..300)
        .map(|u| {
            let s = s.clone();
            tokio::spawn(async move {
                let user = format!("user {u}");
                let key = (u % 3 == 0).then(|| format!("key-{u}"));
                let (id, out) = deduct(&s, V5, &user, 1, key.as_deref()).await;
                assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
                (id, (user, key))
            })
        })
        .collect();
    let mut orders = BTreeMap::new();
    for t in tasks {
        let (id, order) = t.await.unwrap();
        orders.insert(id, order);
    }
    for (id, (user, key)) in &orders {
        entry_and_buyer_are_where_rust_looks(&s, &l, *id, user, key.as_deref()).await;
    }
    let mut conn = s.redis().get();
    for key in l.ledger_keys() {
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(encoding, "listpack", "{key}");
    }
    super::expire_with_the_sale(&s, &l.ledger_keys()).await;
    assert_eq!(
        s.snapshot(ItemRef::whole(1, 1)).await.unwrap().reservations,
        300
    );
    assert_eq!(figures(&s).await.ledger.len(), 300);
}

async fn entry_and_buyer_are_where_rust_looks(
    s: &seckill::stock::StockService,
    l: &ItemLedger,
    id: Uuid,
    user: &str,
    key: Option<&str>,
) {
    let mut conn = s.redis().get();
    let (bucket, field) = l.locate(&id);
    let raw: Vec<u8> = conn.hget(&bucket, &field).await.unwrap();
    let entry = CompactEntry::decode(&raw).unwrap();
    assert_eq!(
        (
            entry.user_id.as_str(),
            entry.idempotency_key.as_deref(),
            entry.quantity
        ),
        (user, key, 1)
    );
    assert_eq!(
        l.buyer_key(user),
        bucket,
        "{user} shares a bucket with their order"
    );
    let held: i64 = conn.hget(&bucket, l.buyer_field(user)).await.unwrap();
    assert_eq!(held, 1, "{user}'s units are in the bucket Rust computes");
    let event = l.event(id, &raw).unwrap();
    assert_eq!((event.price_cents, event.item_id), (100, 1));
}

#[tokio::test]
async fn release_marks_the_entry() {
    let s = warm(V5, 10, 3).await;
    let a = reserve(&s, V5, "u", 2).await;
    release(&s, V5, UID, &[a]).await;
    let l = ledger(&s).await;
    let (bucket, field) = l.locate(&a);
    let raw: Vec<u8> = s.redis().get().hget(&bucket, &field).await.unwrap();
    let entry = CompactEntry::decode(&raw).unwrap();
    assert!(entry.released && entry.quantity == 2, "{entry:?}");
    let keys = s.keys().item(1, 1);
    let exists: bool = s.redis().get().exists(&keys.released).await.unwrap();
    assert!(!exists, "no released hash from v5 on");
}

/// Rebuilt entries and buyers land in their buckets; an order id that is not 16 bytes, or an
/// entry that does not parse, is refused.
#[tokio::test]
async fn a_rebuild_writes_entries_to_their_buckets() {
    let s = service().await;
    begin_rebuild(&s, &on_sale(V5, 200, 3), "t1").await;
    let id = order_id(V5, "u", None);
    let entry = CompactEntry {
        quantity: 1,
        reserved_at_ms: 1_764_197_000_123,
        idempotency_key: None,
        user_id: "u".into(),
        released: false,
    };
    let pairs = [(id.as_bytes().to_vec(), entry.encode().into_bytes())];
    assert!(restore(&s, V5, "t1", RestoreTarget::Ledger, &pairs).await);
    let buyer = [(b"u".to_vec(), b"1".to_vec())];
    assert!(restore(&s, V5, "t1", RestoreTarget::Buyers, &buyer).await);
    for bad in [
        (b"short".to_vec(), b"1 1  u".to_vec()),
        (id.as_bytes().to_vec(), b"not an entry".to_vec()),
    ] {
        let out = s
            .restore_chunk(
                ItemRef::whole(1, 1),
                V5,
                "t1",
                RestoreTarget::Ledger,
                std::slice::from_ref(&bad),
            )
            .await;
        assert!(out.is_err(), "{bad:?} is refused: {out:?}");
    }
    let l = ledger(&s).await;
    assert_eq!(l.ledger_keys().len(), 7);
    let (bucket, field) = l.locate(&id);
    let raw: Vec<u8> = s.redis().get().hget(&bucket, &field).await.unwrap();
    assert_eq!(CompactEntry::decode(&raw), Some(entry));
    let held: i64 = s
        .redis()
        .get()
        .hget(l.buyer_key("u"), l.buyer_field("u"))
        .await
        .unwrap();
    assert_eq!(held, 1);
    assert_eq!(
        s.snapshot(ItemRef::whole(1, 1)).await.unwrap().reservations,
        1,
        "meta counts it"
    );
}

/// A ledger bucket without meta is state of unknown origin: a warm does not write over it.
#[tokio::test]
async fn a_bucket_without_meta_is_not_warmed_over() {
    let s = service().await;
    let orphan = ItemLedger {
        layout: Layout::Compact {
            buckets: 4,
            price_cents: 0,
        },
        ..ledger(&s).await
    };
    let bucket = &orphan.ledger_keys()[3];
    let _: () = s.redis().get().hset(bucket, "x", "y").await.unwrap();
    let out = s
        .prewarm(&on_sale(V5, 200, 3), PrewarmMode::Warm)
        .await
        .unwrap();
    assert_eq!(out, PrewarmOutcome::ForeignState);
    assert!(!s.state(ItemRef::whole(1, 1)).await.unwrap().present);
}

#[tokio::test]
async fn a_huge_item_warms_with_a_capped_number_of_buckets() {
    let huge = 1_000_000_000;
    let s = warm(V5, huge, 5).await;
    let l = ledger(&s).await;
    assert_eq!(l.ledger_keys().len(), compact::MAX_BUCKETS as usize);
    reserve(&s, V5, "u", 1).await;
    let out = s
        .prewarm(&on_sale(V5, huge, 5), PrewarmMode::Refresh)
        .await
        .unwrap();
    assert_eq!(
        out,
        PrewarmOutcome::Refreshed {
            remaining: huge as i64 - 1
        }
    );
    assert_eq!(ledger(&s).await.ledger_keys().len(), l.ledger_keys().len());
}

/// The bucket count is fixed for the item's life: a refresh with another initial stock keeps it.
#[tokio::test]
async fn a_refresh_keeps_the_bucket_count() {
    let s = warm(V5, 64, 2).await;
    assert_eq!(ledger(&s).await.ledger_keys().len(), 2);
    let bigger = seckill::stock::PrewarmItem {
        initial_stock: 6_400,
        ..on_sale(V5, 64, 2)
    };
    let out = s.prewarm(&bigger, PrewarmMode::Refresh).await.unwrap();
    assert_eq!(out, PrewarmOutcome::Refreshed { remaining: 64 });
    assert_eq!(ledger(&s).await.ledger_keys().len(), 2);
}
