//! Redis: what it holds for one item's reservations, read through the item's ledger; pools on
//! the stack's server; and drift written behind the service's back.

use std::collections::{BTreeMap, HashSet};

use seckill::{
    config::RedisSettings,
    stock::{compact::CompactEntry, ledger::ItemLedger},
    stores::redis::{RedisConn, RedisPool, keys::ItemKeys},
};
use uuid::Uuid;

use super::{STACK, TestApp};

/// What Redis holds for one item's reservations, whatever its ledger layout (JSON payloads
/// before v5, compact buckets from v5).
pub struct RedisLedger {
    /// Every entry as its event, by order id.
    pub events: std::collections::BTreeMap<Uuid, seckill::domain::order_reserved::OrderReserved>,
    /// Every buyer's units.
    pub buyers: std::collections::BTreeMap<String, i64>,
    /// Orders whose units were given back (the released hash before v5, marked entries from
    /// v5).
    pub released: HashSet<Uuid>,
}

/// The entries of a compact (v5) ledger whose units were given back: their units, by order id.
pub async fn compact_released(conn: &mut RedisConn, ledger: &ItemLedger) -> BTreeMap<Uuid, u32> {
    use redis::AsyncCommands;
    let mut out = BTreeMap::new();
    for key in ledger.ledger_keys() {
        let bucket: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.unwrap();
        // A bucket's other fields are buyers.
        let entries = bucket
            .iter()
            .filter_map(|(field, raw)| Some((ledger.order_of_field(field)?, raw)));
        for (id, raw) in entries {
            let entry = CompactEntry::decode(raw).expect("a ledger entry");
            if entry.released {
                out.insert(id, entry.quantity);
            }
        }
    }
    out
}

/// Reads [`RedisLedger`] of one item.
pub async fn redis_ledger(redis: &RedisPool, keys: ItemKeys, sale: u64, item: u64) -> RedisLedger {
    use redis::AsyncCommands;
    let mut conn = redis.get();
    let ledger = ItemLedger::open(&mut conn, keys, sale, item).await.unwrap();
    let events = ledger.all_events(&mut conn).await.unwrap();
    let buyers = ledger.all_buyers(&mut conn).await.unwrap();
    let released = if ledger.is_compact() {
        compact_released(&mut conn, &ledger)
            .await
            .into_keys()
            .collect()
    } else {
        let ids: Vec<String> = conn.hkeys(&ledger.keys.released).await.unwrap();
        ids.iter().map(|id| Uuid::parse_str(id).unwrap()).collect()
    };
    RedisLedger {
        events,
        buyers,
        released,
    }
}

/// Settings for a pool of `pool_size` connections to `url`.
pub fn redis_settings(url: &str, pool_size: u64) -> RedisSettings {
    RedisSettings {
        url: url.to_string(),
        pool_size,
        ..RedisSettings::default()
    }
}

/// A pool of `pool_size` connections to the stack's Redis.
pub async fn stack_redis(pool_size: u64) -> RedisPool {
    let settings = redis_settings(&STACK.redis_url, pool_size);
    RedisPool::connect(&settings).await.unwrap()
}

/// Sets the item's stock key to `units` behind the service's back (the drift reconciliation
/// must find), keeping its expiry.
pub async fn overwrite_stock(app: &TestApp, sale: u64, item: u64, units: i64) {
    let keys = app.item_keys(sale, item).await;
    let mut conn = app.redis().get();
    let set = redis::cmd("SET")
        .arg(&keys.stock)
        .arg(units)
        .arg("KEEPTTL")
        .to_owned();
    let _: () = set.query_async(&mut conn).await.unwrap();
}
