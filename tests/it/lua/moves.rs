//! move_take.v1 and move_give.v1: the two halves of a move between holders of a sharded
//! item's stock (one version each: a move does not depend on the sale's ledger layout). Run
//! on one Redis node, where every holder's keys live together; the Cluster tests in
//! `shards` run the same scripts across masters.

use seckill::{
    stock::{PrewarmMode, PrewarmOutcome, StockService, shards::ShardedItem},
    stores::redis::keys::{Holder, ItemKeys},
};

use super::{CURRENT, UID, ints, on_sale, service};

const SHARD0: Holder = Holder::Shard { index: 0, of: 3 };

/// A fresh service with the test item warmed as 3 shards of `stock` units.
async fn sharded(stock: u64) -> StockService {
    let s = service().await;
    let item = seckill::stock::PrewarmItem {
        shards: 3,
        ..on_sale(CURRENT, stock, 2)
    };
    let out = s.prewarm(&item, PrewarmMode::Warm).await.unwrap();
    assert_eq!(
        out,
        PrewarmOutcome::Warmed {
            remaining: stock as i64
        }
    );
    s
}

fn keys(s: &StockService, holder: Holder) -> ItemKeys {
    s.keys()
        .holder(1, 1, seckill::stock::key_uid(CURRENT, UID), holder)
}

/// `move_take.v1` on the central bucket: (id, to, want, least) with the sale's `uid`.
async fn take(s: &StockService, uid: &str, args: (&str, &str, i64, i64)) -> Vec<i64> {
    let k = keys(s, Holder::Central);
    let reply: Vec<redis::Value> = s
        .scripts()
        .moves()
        .take
        .invoke(
            &mut s.redis().get(),
            &[&k.stock, &k.meta, &k.moves_out, &k.moves_pending],
            |cmd| {
                cmd.arg(uid).arg(args.0).arg(args.1).arg(args.2).arg(args.3);
            },
        )
        .await
        .unwrap();
    ints(&reply)
}

/// `move_give.v1` on shard 0: (id, from, units) with the sale's `uid`.
async fn give(s: &StockService, uid: &str, args: (&str, &str, i64)) -> Vec<i64> {
    let k = keys(s, SHARD0);
    let reply: Vec<redis::Value> = s
        .scripts()
        .moves()
        .give
        .invoke(
            &mut s.redis().get(),
            &[&k.stock, &k.meta, &k.moves_in],
            |cmd| {
                cmd.arg(uid).arg(args.0).arg(args.1).arg(args.2);
            },
        )
        .await
        .unwrap();
    ints(&reply)
}

/// An integer field of a holder's meta (0 when absent).
async fn meta_int(s: &StockService, holder: Holder, field: &str) -> i64 {
    let v: Option<i64> = redis::cmd("HGET")
        .arg(keys(s, holder).meta)
        .arg(field)
        .query_async(&mut s.redis().get())
        .await
        .unwrap();
    v.unwrap_or(0)
}

async fn stock(s: &StockService, holder: Holder) -> i64 {
    let v: Option<i64> = redis::cmd("GET")
        .arg(keys(s, holder).stock)
        .query_async(&mut s.redis().get())
        .await
        .unwrap();
    v.unwrap_or(-1)
}

async fn hlen(s: &StockService, key: &str) -> i64 {
    redis::cmd("HLEN")
        .arg(key)
        .query_async(&mut s.redis().get())
        .await
        .unwrap()
}

async fn pttl(s: &StockService, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut s.redis().get())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_take_records_its_move_once_and_keeps_the_balance() {
    let s = sharded(60).await;
    // Warmed: 10 per shard, 30 in the central bucket.
    assert_eq!(stock(&s, Holder::Central).await, 30);
    assert_eq!(take(&s, UID, ("m1", "h0", 12, 1)).await, [1, 12, 18]);
    let central = keys(&s, Holder::Central);
    assert_eq!(hlen(&s, &central.moves_out).await, 1);
    assert_eq!(hlen(&s, &central.moves_pending).await, 1);
    assert_eq!(meta_int(&s, Holder::Central, "moved_out").await, 12);
    // The records expire with the sale.
    assert!(pttl(&s, &central.moves_out).await > 0);
    assert!(pttl(&s, &central.moves_pending).await > 0);
    // The same move again takes nothing more.
    assert_eq!(take(&s, UID, ("m1", "h0", 12, 1)).await, [1, 12, 18]);
    assert_eq!(meta_int(&s, Holder::Central, "moved_out").await, 12);
    // What is left is taken when at least `least` is: all 18 for a want of 50, none for 19.
    assert_eq!(take(&s, UID, ("m2", "h0", 50, 19)).await, [-5, 18]);
    assert_eq!(take(&s, UID, ("m2", "h0", 50, 1)).await, [1, 18, 0]);
    assert_eq!(take(&s, UID, ("m3", "h0", 1, 1)).await, [-5, 0]);
    assert_eq!(meta_int(&s, Holder::Central, "moved_out").await, 30);
}

#[tokio::test]
async fn a_give_adds_each_move_once() {
    let s = sharded(60).await;
    assert_eq!(give(&s, UID, ("m1", "c", 7)).await, [1, 17]);
    assert_eq!(give(&s, UID, ("m1", "c", 7)).await, [2, 17], "given before");
    assert_eq!(meta_int(&s, SHARD0, "moved_in").await, 7);
    let shard = keys(&s, SHARD0);
    assert_eq!(hlen(&s, &shard.moves_in).await, 1);
    assert!(pttl(&s, &shard.moves_in).await > 0);
}

#[tokio::test]
async fn moves_refuse_bad_arguments_and_other_sales() {
    let s = sharded(60).await;
    for bad in [
        ("", "h0", 1, 1),
        ("m", "", 1, 1),
        ("m", "h 0", 1, 1),
        ("m", "h0", 0, 1),
        ("m", "h0", 2, 3),
        ("m", "h0", 1, 0),
    ] {
        assert_eq!(take(&s, UID, bad).await, [-6], "{bad:?}");
    }
    for bad in [("", "c", 1), ("m", "", 1), ("m", "c", 0), ("m", "c c", 1)] {
        assert_eq!(give(&s, UID, bad).await, [-6], "{bad:?}");
    }
    assert_eq!(take(&s, "other-sale", ("m", "h0", 1, 1)).await, [-7]);
    assert_eq!(give(&s, "other-sale", ("m", "c", 1)).await, [-7]);
    // Nothing was written.
    assert_eq!(stock(&s, Holder::Central).await, 30);
    assert_eq!(stock(&s, SHARD0).await, 10);
    assert_eq!(hlen(&s, &keys(&s, Holder::Central).moves_out).await, 0);
}

#[tokio::test]
async fn moves_wait_for_a_rebuild_and_need_state() {
    let s = sharded(60).await;
    for holder in [Holder::Central, SHARD0] {
        let _: () = redis::cmd("HSET")
            .arg(keys(&s, holder).meta)
            .arg("restoring")
            .arg("t")
            .query_async(&mut s.redis().get())
            .await
            .unwrap();
    }
    assert_eq!(take(&s, UID, ("m", "h0", 1, 1)).await, [-8]);
    assert_eq!(give(&s, UID, ("m", "c", 1)).await, [-8]);
    let empty = service().await;
    assert_eq!(take(&empty, UID, ("m", "h0", 1, 1)).await, [-1]);
    assert_eq!(give(&empty, UID, ("m", "c", 1)).await, [-1]);
}

#[tokio::test]
async fn a_move_whose_give_never_came_is_given_by_the_next_settle() {
    let s = sharded(60).await;
    // Taken, and its caller gone before the give.
    assert_eq!(take(&s, UID, ("0-m1", "h0", 5, 1)).await, [1, 5, 25]);
    let item = ShardedItem {
        sale_id: 1,
        item_id: 1,
        sale_uid: UID,
        key_uid: seckill::stock::key_uid(CURRENT, UID),
        shards: 3,
    };
    // A young move is left to its caller; with no age limit, it is given, once.
    let young = format!("{:x}-m2", chrono::Utc::now().timestamp_millis());
    assert_eq!(take(&s, UID, (&young, "h0", 1, 1)).await, [1, 1, 24]);
    let settled = s
        .settle_moves(&item, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(settled, 5, "the old move only");
    assert_eq!(stock(&s, SHARD0).await, 15);
    assert_eq!(
        s.settle_moves(&item, std::time::Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.settle_moves(&item, std::time::Duration::ZERO)
            .await
            .unwrap(),
        0,
        "nothing pending"
    );
    assert_eq!(stock(&s, SHARD0).await, 16);
    assert_eq!(hlen(&s, &keys(&s, Holder::Central).moves_pending).await, 0);
    // Every holder still balances: initial + in - out == stock (nothing sold).
    let in0 = meta_int(&s, SHARD0, "moved_in").await;
    let out = meta_int(&s, Holder::Central, "moved_out").await;
    assert_eq!((in0, out), (6, 6));
    assert_eq!(stock(&s, Holder::Central).await + out, 30);
    assert_eq!(stock(&s, SHARD0).await - in0, 10);
}
