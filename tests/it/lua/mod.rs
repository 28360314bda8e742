//! The Lua scripts' contracts, tested directly against Redis and grouped by script: each
//! contract is written once, as `async fn contract(version: &str)`, and `live!` runs it against
//! every script file a live version runs (`lua::deduct::return_codes::v5`; v6 runs the v5
//! files under other key names, which the scripts never see). `compact` checks what only the
//! compact layout promises; `lock` the lock scripts, which no sale pins.
//!
//! The harness (here and in [`state`]) speaks for both ledger layouts: a request gets the
//! order id the buy path would send, and what Redis holds is read back through `ItemLedger`,
//! so the assertions are the same for every version.

/// Writes, for each `contract`, `mod contract { v5 }`: one test per script file a live version
/// runs.
macro_rules! live {
    (multi_thread: $($contract:ident),+ $(,)?) => {
        live!(@tests [tokio::test(flavor = "multi_thread", worker_threads = 2)] $($contract),+);
    };
    (@tests [$test:meta] $($contract:ident),+) => {$(
        mod $contract {
            #[$test]
            async fn v5() {
                super::$contract($crate::lua::live("v5")).await;
            }
        }
    )+};
    ($($contract:ident),+ $(,)?) => {
        live!(@tests [tokio::test] $($contract),+);
    };
}

mod calls;
mod compact;
mod deduct;
mod deduct_batch;
mod lanes;
mod lock;
mod moves;
mod prewarm;
mod release;
mod restore;
mod state;

use seckill::stock::ItemRef;
use std::sync::Arc;

use chrono::Utc;
use seckill::{
    domain::{
        order_reserved::OrderReserved,
        script_version::{KNOWN_VERSIONS, has_compact_ledger},
    },
    observe::metrics::Metrics,
    stock::{
        DeductOutcome, DeductRequest, PrewarmItem, PrewarmMode, PrewarmOutcome, ReleaseOutcome,
        RestoreTarget, ScriptRegistry, StockError, StockService,
        compact::{derived_order_id, in_buyers_bucket},
    },
    stores::redis::keys::Keys,
};
use uuid::Uuid;

use crate::support::{stack_redis, unique};

pub(crate) use calls::{all_ints, deduct_batch, ints, invoke, label, replayed, req};
pub(crate) use state::{Figures, expire_with_the_sale, figures, ledger};

/// The live script versions with files of their own. `live!` writes a test for each; a new
/// version with new files needs its line there.
pub(crate) const LIVE: &[&str] = &["v5"];

/// The newest live version (for what is not a script contract: the batching lanes, moves).
pub(crate) const CURRENT: &str = "v6";

/// The uid stamped on the test item's state (sale 1, item 1).
pub(crate) const UID: &str = "uid-1";

/// `version`, checked to be live (a test of a version that is no longer live fails, so the
/// macro is kept in step with [`LIVE`]).
pub(crate) fn live(version: &'static str) -> &'static str {
    assert!(LIVE.contains(&version), "{version} is not live: {LIVE:?}");
    version
}

#[test]
fn every_live_version_is_tested() {
    use seckill::stock::scripts::ScriptKind;
    // A version runs either files of its own, tested here, or exactly a tested version's.
    let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
    let body = |kind, v| registry.get(kind, v).unwrap().body();
    for version in KNOWN_VERSIONS {
        let kinds = [
            ScriptKind::Prewarm,
            ScriptKind::Deduct,
            ScriptKind::Restore,
            ScriptKind::Release,
        ];
        let tested = LIVE.contains(version)
            || LIVE
                .iter()
                .any(|live| kinds.iter().all(|&k| body(k, version) == body(k, live)));
        assert!(
            tested,
            "{version} runs files no contract test covers: add it to LIVE and to live!"
        );
    }
    assert_eq!(CURRENT, seckill::domain::script_version::CURRENT);
}

/// A stock service over the shared Redis, under a prefix of its own.
pub(crate) async fn service() -> StockService {
    let redis = stack_redis(1).await;
    let scripts = Arc::new(ScriptRegistry::new(Arc::new(Metrics::new())));
    StockService::new(redis, Keys::new(&format!("t{}:", unique())), scripts)
}

/// Item 1 of sale 1 (uid [`UID`]), pinned to `version`, with a window that opens
/// `starts_in_ms` from now and lasts `lasts_ms`; its keys expire a minute after the window.
pub(crate) fn item(
    version: &str,
    stock: u64,
    limit: u32,
    starts_in_ms: i64,
    lasts_ms: i64,
) -> PrewarmItem {
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
        script_version: version.into(),
        sale_uid: UID.into(),
        initial_stock: stock,
        shards: 1,
    }
}

/// An item on sale now, for a minute.
pub(crate) fn on_sale(version: &str, stock: u64, limit: u32) -> PrewarmItem {
    item(version, stock, limit, -1_000, 60_000)
}

/// A fresh service with [`on_sale`] warmed.
pub(crate) async fn warm(version: &str, stock: u64, limit: u32) -> StockService {
    let s = service().await;
    let out = s
        .prewarm(&on_sale(version, stock, limit), PrewarmMode::Warm)
        .await
        .unwrap();
    assert_eq!(
        out,
        PrewarmOutcome::Warmed {
            remaining: stock as i64
        }
    );
    s
}

/// The order id the buy path sends with `user`'s request: from v5 the one a key derives, or a
/// fresh id in the buyer's bucket.
pub(crate) fn order_id(version: &str, user: &str, key: Option<&str>) -> Uuid {
    match key {
        _ if !has_compact_ledger(version) => Uuid::now_v7(),
        Some(key) => derived_order_id(UID, 1, user, key),
        None => in_buyers_bucket(Uuid::now_v7(), user),
    }
}

/// The reservation event the buy path stores before v5 (release.v4 reads user and quantity
/// from it).
pub(crate) fn payload(id: Uuid, user: &str, qty: u32, key: Option<&str>) -> Vec<u8> {
    let now = Utc::now().timestamp_millis();
    OrderReserved::new(id, 1, 1, user, qty, 100, now)
        .with_idempotency_key(key)
        .to_bytes()
}

/// One request through the deduct script of `version`, as the buy path sends it (through the
/// batching lanes).
pub(crate) async fn deduct(
    s: &StockService,
    version: &str,
    user: &str,
    qty: u32,
    key: Option<&str>,
) -> (Uuid, DeductOutcome) {
    let id = order_id(version, user, key);
    (
        id,
        try_deduct(s, version, id, user, qty, key).await.unwrap(),
    )
}

/// [`deduct`] with the order id `id`, failures included.
pub(crate) async fn try_deduct(
    s: &StockService,
    version: &str,
    id: Uuid,
    user: &str,
    qty: u32,
    key: Option<&str>,
) -> Result<DeductOutcome, StockError> {
    s.deduct(&DeductRequest {
        sale_id: 1,
        item_id: 1,
        script_version: version,
        sale_uid: UID,
        user_id: user,
        quantity: qty,
        order_id: id,
        payload: &payload(id, user, qty, key),
        reserved_at_ms: Utc::now().timestamp_millis(),
        idempotency_key: key,
        shards: 1,
    })
    .await
}

/// A reservation of `qty` for `user`, which must succeed; its order id.
pub(crate) async fn reserve(s: &StockService, version: &str, user: &str, qty: u32) -> Uuid {
    let (id, out) = deduct(s, version, user, qty, None).await;
    assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
    id
}

/// `release` of `ids` on the test item under `uid`.
pub(crate) async fn release(
    s: &StockService,
    version: &str,
    uid: &str,
    ids: &[Uuid],
) -> Vec<ReleaseOutcome> {
    s.release(ItemRef::whole(1, 1), version, uid, ids)
        .await
        .unwrap()
}

/// Starts a rebuild of `item` under `token`, which must begin.
pub(crate) async fn begin_rebuild(s: &StockService, item: &PrewarmItem, token: &str) {
    let out = s
        .prewarm_with_token(item, PrewarmMode::RestoreBegin, token)
        .await
        .unwrap();
    assert_eq!(out, PrewarmOutcome::RestoreBegun);
}

/// Writes one chunk of the rebuild under `token`; false when no rebuild runs under it.
pub(crate) async fn restore(
    s: &StockService,
    version: &str,
    token: &str,
    target: RestoreTarget,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> bool {
    s.restore_chunk(ItemRef::whole(1, 1), version, token, target, pairs)
        .await
        .unwrap()
}

/// The catalog's view of the test item, pinned to `version` (what the buy path passes).
pub(crate) fn meta(version: &str) -> seckill::stores::mysql::sales::ItemMeta {
    seckill::stores::mysql::sales::ItemMeta {
        sale_id: 1,
        item_id: 1,
        price_cents: 100,
        per_user_limit: 2,
        starts_at: Utc::now(),
        ends_at: Utc::now(),
        script_version: version.into(),
        sale_uid: UID.into(),
        admission: Default::default(),
        shards: 1,
    }
}
