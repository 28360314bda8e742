//! restore, with prewarm's `restore_begin` and `restore_end`: an item rebuilt from MySQL in
//! chunks under a token, which sells again from the rebuilt state.

use seckill::stock::ItemRef;
use std::collections::BTreeMap;

use redis::AsyncCommands;
use seckill::{
    domain::script_version::has_compact_ledger,
    stock::{
        PrewarmItem, PrewarmMode, PrewarmOutcome, ReleaseOutcome, RestoreTarget, StockService,
        compact::CompactEntry, scripts::ScriptKind,
    },
};
use uuid::Uuid;

use super::{
    UID, all_ints, begin_rebuild, deduct_batch, expire_with_the_sale, figures, ints, invoke,
    ledger, on_sale, order_id, payload, release, replayed, req, restore, service,
};

live!(
    a_rebuild_runs_under_its_token,
    a_rebuilt_item_sells_on_from_the_rebuilt_state,
    a_rebuild_started_again_clears_the_interrupted_one,
    a_bad_chunk_is_refused,
    a_rebuild_restores_the_released_record,
);

/// One order as MySQL knows it: id, buyer, units, idempotency key, closed (units given back).
pub(super) struct Order<'a>(
    pub Uuid,
    pub &'a str,
    pub u32,
    pub Option<&'a str>,
    pub bool,
);

/// The `(field, value)` of `order`'s ledger entry as `version` keeps it.
fn ledger_pair(version: &str, o: &Order<'_>) -> (Vec<u8>, Vec<u8>) {
    let Order(id, user, qty, key, released) = *o;
    if !has_compact_ledger(version) {
        return (id.to_string().into_bytes(), payload(id, user, qty, key));
    }
    let entry = CompactEntry {
        quantity: qty,
        reserved_at_ms: chrono::Utc::now().timestamp_millis(),
        idempotency_key: key.map(str::to_string),
        user_id: user.into(),
        released,
    };
    (id.as_bytes().to_vec(), entry.encode().into_bytes())
}

/// Writes `orders` under `token` as a rebuild does: the ledger, each buyer's open units, and
/// (v4) the idempotency and released records, which v5 keeps in the entries.
pub(super) async fn write_orders(
    s: &StockService,
    version: &str,
    token: &str,
    orders: &[Order<'_>],
) {
    let ledger: Vec<_> = orders.iter().map(|o| ledger_pair(version, o)).collect();
    let mut held = BTreeMap::<&str, u32>::new();
    for Order(_, user, qty, _, released) in orders {
        if !released {
            *held.entry(user).or_default() += qty;
        }
    }
    let buyers: Vec<_> = held
        .iter()
        .map(|(u, q)| (u.as_bytes().to_vec(), q.to_string().into_bytes()))
        .collect();
    let mut chunks = vec![
        (RestoreTarget::Ledger, ledger),
        (RestoreTarget::Buyers, buyers),
    ];
    if !has_compact_ledger(version) {
        let record = |o: &Order<'_>| format!("{} {}", o.0, o.2).into_bytes();
        let idem = orders.iter().filter_map(|o| {
            let key = o.3?;
            Some((format!("{}\0{key}", o.1).into_bytes(), record(o)))
        });
        let released = orders
            .iter()
            .filter(|o| o.4)
            .map(|o| (o.0.to_string().into_bytes(), o.2.to_string().into_bytes()));
        chunks.push((RestoreTarget::Idempotency, idem.collect()));
        chunks.push((RestoreTarget::Released, released.collect()));
    }
    for (target, pairs) in chunks.into_iter().filter(|(_, p)| !p.is_empty()) {
        assert!(
            restore(s, version, token, target, &pairs).await,
            "{target:?}"
        );
    }
}

async fn end_rebuild(s: &StockService, item: &PrewarmItem, token: &str) -> PrewarmOutcome {
    s.prewarm_with_token(item, PrewarmMode::RestoreEnd, token)
        .await
        .unwrap()
}

/// Meanwhile prewarm refuses; chunks of another token and its end write nothing; the end
/// writes the stock and every key expires with the sale.
async fn a_rebuild_runs_under_its_token(version: &str) {
    let s = service().await;
    let item = on_sale(version, 10, 2);
    begin_rebuild(&s, &item, "t1").await;
    assert!(s.state(ItemRef::whole(1, 1)).await.unwrap().restoring);
    for mode in [PrewarmMode::Warm, PrewarmMode::Force, PrewarmMode::Refresh] {
        let out = s.prewarm(&item, mode).await.unwrap();
        assert_eq!(out, PrewarmOutcome::Restoring, "{mode:?}");
    }
    let a = Order(order_id(version, "a", Some("k")), "a", 2, Some("k"), false);
    write_orders(&s, version, "t1", &[a]).await;
    let stale = [(b"a".to_vec(), b"9".to_vec())];
    assert!(!restore(&s, version, "t0", RestoreTarget::Buyers, &stale).await);
    assert_eq!(
        end_rebuild(&s, &item, "t0").await,
        PrewarmOutcome::NotRestoring
    );
    let rebuilt = PrewarmItem { stock: 8, ..item };
    assert_eq!(
        end_rebuild(&s, &rebuilt, "t1").await,
        PrewarmOutcome::Restored { remaining: 8 }
    );
    let f = figures(&s).await;
    assert_eq!((f.stock, f.buyers["a"]), (Some(8), 2));
    f.assert_balanced(10);
    let keys = s.keys().item(1, 1);
    let initial: i64 = s
        .redis()
        .get()
        .hget(&keys.meta, "initial_stock")
        .await
        .unwrap();
    assert_eq!(initial, 10, "the initial stock, not the rebuilt one");
    let l = ledger(&s).await;
    let mut state = [l.buyer_keys(), l.ledger_keys(), vec![keys.stock.clone()]].concat();
    if !l.is_compact() {
        state.push(keys.idem.clone());
    }
    state.sort();
    state.dedup();
    expire_with_the_sale(&s, &state).await;
}

/// After the rebuild the buyer's rebuilt units count against the limit, the rebuilt key
/// replays its order, and a warmed item is not rebuilt over.
async fn a_rebuilt_item_sells_on_from_the_rebuilt_state(version: &str) {
    let s = service().await;
    let item = on_sale(version, 10, 2);
    begin_rebuild(&s, &item, "t1").await;
    let a = order_id(version, "a", Some("k"));
    write_orders(&s, version, "t1", &[Order(a, "a", 2, Some("k"), false)]).await;
    end_rebuild(
        &s,
        &PrewarmItem {
            stock: 8,
            ..item.clone()
        },
        "t1",
    )
    .await;
    let batch = [
        req(version, "a", "1", ""),
        req(version, "b", "1", ""),
        req(version, "a", "1", "k"),
    ];
    let replies = deduct_batch(&s, version, UID, &batch, 3).await.unwrap();
    assert_eq!(ints(&replies[0]), [-4, 2, 2]);
    assert_eq!(ints(&replies[1]), [1, 7]);
    assert_eq!(
        replayed(&replies[2]),
        (a, 2),
        "the rebuilt key answers its order"
    );
    let again = s
        .prewarm_with_token(&item, PrewarmMode::RestoreBegin, "t2")
        .await
        .unwrap();
    assert_eq!(again, PrewarmOutcome::AlreadyWarmed { remaining: 7 });
}

async fn a_rebuild_started_again_clears_the_interrupted_one(version: &str) {
    let s = service().await;
    let item = on_sale(version, 10, 2);
    begin_rebuild(&s, &item, "t1").await;
    let stale = Order(order_id(version, "a", None), "a", 1, None, false);
    write_orders(&s, version, "t1", &[stale]).await;
    assert_eq!(figures(&s).await.ledger.len(), 1);
    begin_rebuild(&s, &item, "t2").await;
    let f = figures(&s).await;
    assert!(f.ledger.is_empty() && f.buyers.is_empty(), "{f:?}");
    assert_eq!(
        s.snapshot(ItemRef::whole(1, 1)).await.unwrap().reservations,
        0
    );
}

/// An unknown target, or a chunk without a complete field/value pair: BAD_ARGUMENT, nothing
/// written.
async fn a_bad_chunk_is_refused(version: &str) {
    let s = service().await;
    begin_rebuild(&s, &on_sale(version, 10, 2), "t1").await;
    for args in [
        vec!["t1", "stock", "f", "v"],
        vec!["t1", "ledger", "f"],
        vec!["t1", "ledger"],
        vec!["", "buyers", "a", "1"],
    ] {
        let reply: Vec<redis::Value> = invoke(&s, ScriptKind::Restore, version, |cmd| {
            for a in &args {
                cmd.arg(*a);
            }
        })
        .await
        .unwrap();
        assert_eq!(ints(&reply), [-2, 0], "{args:?}");
    }
    let f = figures(&s).await;
    assert!(f.ledger.is_empty() && f.buyers.is_empty(), "{f:?}");
}

/// A closed order rebuilt with its release: release waits for the end of the rebuild, then
/// does not give its units back a second time; an open one is released.
async fn a_rebuild_restores_the_released_record(version: &str) {
    let s = service().await;
    let item = on_sale(version, 10, 3);
    begin_rebuild(&s, &item, "t1").await;
    let (closed, kept) = (order_id(version, "u", None), order_id(version, "u", None));
    let orders = [
        Order(closed, "u", 2, None, true),
        Order(kept, "u", 1, None, false),
    ];
    write_orders(&s, version, "t1", &orders).await;
    assert_eq!(
        release(&s, version, UID, &[closed]).await,
        [ReleaseOutcome::Recovering],
        "no release while a rebuild runs"
    );
    end_rebuild(&s, &PrewarmItem { stock: 9, ..item }, "t1").await;
    let f = figures(&s).await;
    assert_eq!(
        (f.released.clone(), f.released_units),
        ([(closed, 2)].into(), 2)
    );
    f.assert_balanced(10);
    assert_eq!(
        release(&s, version, UID, &[closed, kept]).await,
        [
            ReleaseOutcome::Already { units: 2 },
            ReleaseOutcome::Released { units: 1 }
        ]
    );
    let f = figures(&s).await;
    assert_eq!((f.stock, f.released_units), (Some(10), 3));
    f.assert_balanced(10);
    let replies = deduct_batch(&s, version, UID, &[req(version, "v", "1", "")], 1).await;
    assert_eq!(all_ints(&replies.unwrap()), [[1, 9]], "it sells again");
}
