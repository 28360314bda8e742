//! What Redis holds for one item's reservations, read through the item's ledger.

use std::collections::HashSet;

use seckill::stores::redis::{RedisPool, keys::Keys};
use uuid::Uuid;

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

/// Reads [`RedisLedger`] of one item.
pub async fn redis_ledger(redis: &RedisPool, keys: &Keys, sale: u64, item: u64) -> RedisLedger {
    use redis::AsyncCommands;
    let mut conn = redis.get();
    let ledger =
        seckill::stock::ledger::ItemLedger::open(&mut conn, keys.item(sale, item), sale, item)
            .await
            .unwrap();
    let events = ledger.all_events(&mut conn).await.unwrap();
    let buyers = ledger.all_buyers(&mut conn).await.unwrap();
    let released = if ledger.is_compact() {
        let mut out = HashSet::new();
        for key in ledger.ledger_keys() {
            let page: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.unwrap();
            for (field, raw) in page {
                // A bucket's other fields are buyers.
                let Some(id) = ledger.order_of_field(&field) else {
                    continue;
                };
                let entry = seckill::stock::compact::CompactEntry::decode(&raw).unwrap();
                if entry.released {
                    out.insert(id);
                }
            }
        }
        out
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
