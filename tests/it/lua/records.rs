//! What only v6's record ledger promises: one hash per item, each buyer's orders under their
//! hash, the hash there with its expiry from the warm on, an order id that must carry its
//! buyer's hash, and rebuilt fields counted once.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use seckill::stock::{
    DeductOutcome, RestoreTarget,
    compact::{CompactEntry, in_buyers_bucket},
    records,
};
use uuid::Uuid;

use super::{
    UID, all_ints, begin_rebuild, deduct, deduct_batch, figures, ledger, on_sale, release, req,
    reserve, restore, service, warm,
};

const V6: &str = "v6";

/// 200 buyers, a third with a key, some buying twice: the ledger is one hash whose fields are
/// the buyers' hashes, each buyer's records are under theirs, and meta counts the entries.
#[tokio::test]
async fn each_buyers_orders_are_records_under_their_hash_in_one_hash() {
    let s = warm(V6, 500, 2).await;
    let l = ledger(&s).await;
    assert!(l.is_records());
    assert_eq!(
        l.ledger_keys(),
        std::slice::from_ref(&l.keys.ledger),
        "one hash"
    );
    let mut orders = BTreeMap::new();
    for u in 0..200 {
        let user = format!("user {u}");
        let key = (u % 3 == 0).then(|| format!("key-{u}"));
        let (id, out) = deduct(&s, V6, &user, 1, key.as_deref()).await;
        assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
        orders.insert(id, (user.clone(), key));
        if u % 4 == 0 {
            orders.insert(reserve(&s, V6, &user, 1).await, (user, None));
        }
    }
    let mut conn = s.redis().get();
    for (id, (user, key)) in &orders {
        let value: Vec<u8> = conn
            .hget(&l.keys.ledger, records::user_field(user).as_slice())
            .await
            .unwrap();
        let entry = CompactEntry::decode(records::entry_of(&value, id).unwrap()).unwrap();
        assert_eq!(
            (entry.user_id.as_str(), entry.idempotency_key.as_deref()),
            (user.as_str(), key.as_deref())
        );
    }
    assert_eq!(s.snapshot(1, 1).await.unwrap().reservations, 250);
    let f = figures(&s).await;
    assert_eq!(f.ledger.len(), 250);
    assert_eq!(f.buyers["user 0"], 2, "units are counted from the records");
    f.assert_balanced(500);
}

/// The hash exists with the sale's expiry before the first buy; should it be lost, the next
/// batch writes it back with its expiry.
#[tokio::test]
async fn the_ledger_carries_the_sales_expiry_from_the_warm_on() {
    let s = warm(V6, 10, 2).await;
    let l = ledger(&s).await;
    super::expire_with_the_sale(&s, &l.ledger_keys()).await;
    assert_eq!(s.snapshot(1, 1).await.unwrap().reservations, 0);
    let _: () = s.redis().get().del(&l.keys.ledger).await.unwrap();
    reserve(&s, V6, "u", 1).await;
    super::expire_with_the_sale(&s, &l.ledger_keys()).await;
    let marker: bool = s.redis().get().hexists(&l.keys.ledger, "").await.unwrap();
    assert!(marker, "the marker is written back");
}

/// An order id whose last four bytes are not its buyer's hash would count the buyer's units
/// under another field: BAD_ARGUMENT, alone in its batch, nothing written for it.
#[tokio::test]
async fn an_order_id_without_its_buyers_hash_is_refused() {
    let s = warm(V6, 10, 1).await;
    let mut foreign = req(V6, "u", "1", "");
    foreign.order = in_buyers_bucket(Uuid::now_v7(), "someone else");
    let batch = [req(V6, "u", "1", ""), foreign, req(V6, "v", "1", "")];
    let replies = deduct_batch(&s, V6, UID, &batch, 3).await.unwrap();
    assert_eq!(all_ints(&replies), [vec![1, 9], vec![-6], vec![1, 8]]);
    let f = figures(&s).await;
    assert_eq!(f.ledger.len(), 2);
    assert_eq!(f.buyers["u"], 1, "the limit of 1 held");
}

/// Several orders of one buyer released in one call: each record is marked, the others of the
/// field are kept.
#[tokio::test]
async fn a_release_marks_records_and_keeps_their_neighbours() {
    let s = warm(V6, 10, 5).await;
    let ids = [
        reserve(&s, V6, "u", 1).await,
        reserve(&s, V6, "u", 2).await,
        reserve(&s, V6, "u", 1).await,
    ];
    release(&s, V6, UID, &[ids[0], ids[2]]).await;
    let f = figures(&s).await;
    assert_eq!(f.ledger.len(), 3);
    assert_eq!(f.released, [(ids[0], 1), (ids[2], 1)].into());
    assert_eq!(f.buyers["u"], 2);
    f.assert_balanced(10);
}

/// A rebuilt field whose records name another buyer hash, do not parse, or whose header is not
/// the units they hold, is refused; a chunk written twice counts its entries and released units
/// once.
#[tokio::test]
async fn a_rebuild_checks_its_records_and_counts_them_once() {
    let s = service().await;
    let item = on_sale(V6, 10, 3);
    begin_rebuild(&s, &item, "t1").await;
    let id = in_buyers_bucket(Uuid::now_v7(), "u");
    let entry = |released| CompactEntry {
        quantity: 2,
        reserved_at_ms: 1_764_197_000_123,
        idempotency_key: None,
        user_id: "u".into(),
        released,
    };
    let released = entry(true);
    let value = records::field_value([(&id, &released)]);
    let keys = s.keys().item(1, 1);
    for bad in [
        (records::user_field("v").to_vec(), value.clone()),
        (
            records::user_field("u").to_vec(),
            b"0\nnot a record".to_vec(),
        ),
        (
            records::user_field("u").to_vec(),
            [b"2", &value[1..]].concat(),
        ),
        (b"abc".to_vec(), value.clone()),
    ] {
        let refused = s
            .restore_chunk(1, 1, V6, "t1", RestoreTarget::Ledger, &[bad])
            .await;
        assert!(refused.is_err(), "BAD_ARGUMENT is outside the contract");
    }
    let good = [(records::user_field("u").to_vec(), value)];
    for _ in 0..2 {
        assert!(restore(&s, V6, "t1", RestoreTarget::Ledger, &good).await);
    }
    let mut conn = s.redis().get();
    let (entries, released): (i64, i64) = redis::pipe()
        .hget(&keys.meta, "entries")
        .hget(&keys.meta, "released_units")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((entries, released), (1, 2));
}

/// Two buyers whose ids hash alike ("Aa" and "BB") share a field: the header counts both, and
/// past it each buyer's own records decide, so each gets exactly their limit.
#[tokio::test]
async fn buyers_sharing_a_field_each_get_exactly_their_limit() {
    assert_eq!(records::user_field("Aa"), records::user_field("BB"));
    let s = warm(V6, 10, 2).await;
    let batch = [
        req(V6, "Aa", "2", ""),
        req(V6, "BB", "1", ""),
        req(V6, "BB", "1", ""),
        req(V6, "BB", "1", ""),
        req(V6, "Aa", "1", ""),
    ];
    let replies = deduct_batch(&s, V6, UID, &batch, 5).await.unwrap();
    assert_eq!(
        all_ints(&replies),
        [
            vec![1, 8],
            vec![1, 7],
            vec![1, 6],
            vec![-4, 2, 2],
            vec![-4, 2, 2]
        ]
    );
    let f = figures(&s).await;
    assert_eq!((f.buyers["Aa"], f.buyers["BB"]), (2, 2));
    let value: Vec<u8> = s
        .redis()
        .get()
        .hget(
            &ledger(&s).await.keys.ledger,
            records::user_field("BB").as_slice(),
        )
        .await
        .unwrap();
    assert_eq!(records::split_header(&value).map(|(u, _)| u), Some(4));
}
