//! Each Lua script's documented return codes, tested directly against Redis.

mod batch;
mod deduct;
mod locks;
mod prewarm;

use std::sync::Arc;

use chrono::Utc;
use seckill::{
    config::RedisSettings,
    metrics::Metrics,
    redis_pool::RedisPool,
    stock::{DeductOutcome, DeductRequest, Keys, PrewarmItem, ScriptRegistry, StockService},
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
    // From v5 a request with a key carries the order id derived from it (the buy path's rule).
    let order_id = match idem {
        Some(key) if seckill::domain::script_version::has_compact_ledger(version) => {
            seckill::stock::compact::derived_order_id("uid-1", 1, user, key)
        }
        _ => Uuid::now_v7(),
    };
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
            reserved_at_ms: Utc::now().timestamp_millis(),
            idempotency_key: idem,
        })
        .await
        .unwrap();
    (order_id, out)
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
