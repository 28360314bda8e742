//! Reading an item's state in Redis: whose it is, what is left, what is still on its way.

use redis::AsyncCommands;

use super::{StockError, StockService};

/// What Redis holds about an item's identity and state (meta only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemState {
    /// False when meta is missing: never warmed, expired, or lost.
    pub present: bool,
    /// The sale uid in meta (v3 on).
    pub sale_uid: Option<String>,
    /// True while a rebuild runs.
    pub restoring: bool,
}

/// Live figures of one item in Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemSnapshot {
    /// Remaining units; `None` when the item is not in Redis.
    pub remaining: Option<i64>,
    /// Units initially warmed; `None` when not in Redis.
    pub initial: Option<i64>,
    /// Reservations in the ledger.
    pub reservations: u64,
    /// Reservations not yet acknowledged by Kafka.
    pub undelivered: u64,
}

impl StockService {
    /// Meta's view of an item: present, whose, rebuilding.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn state(&self, sale_id: u64, item_id: u64) -> Result<ItemState, StockError> {
        let keys = self.keys.item(sale_id, item_id);
        let mut conn = self.redis.get();
        let (fields, sale_uid, restoring): (u64, Option<String>, Option<String>) = redis::pipe()
            .hlen(&keys.meta)
            .hget(&keys.meta, "sale_uid")
            .hget(&keys.meta, "restoring")
            .query_async(&mut conn)
            .await?;
        Ok(ItemState {
            present: fields > 0,
            sale_uid,
            restoring: restoring.is_some(),
        })
    }

    /// True when at least the configured replicas hold every write made to the item so far
    /// (always true without replica confirmation): a fence key written in the item's slot,
    /// then `WAIT`, in one pipeline on the node that owns the slot.
    ///
    /// # Errors
    /// Redis failed.
    pub(crate) async fn replicated(&self, sale_id: u64, item_id: u64) -> Result<bool, StockError> {
        let Some(wait) = self.replicas else {
            return Ok(true);
        };
        let fence = self.keys.item_fence(sale_id, item_id);
        let mut conn = self.redis.get();
        let (acked,): (u32,) = redis::pipe()
            .cmd("SET")
            .arg(&fence)
            .arg(1)
            .arg("PX")
            .arg(60_000)
            .ignore()
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(wait.timeout_ms)
            .query_async(&mut conn)
            .await?;
        Ok(acked >= wait.replicas)
    }

    /// Live figures of one item, read in one pipeline (one slot, so cluster-safe).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn snapshot(&self, sale_id: u64, item_id: u64) -> Result<ItemSnapshot, StockError> {
        let keys = self.keys.item(sale_id, item_id);
        let mut conn = self.redis.get();
        type Figures = (Option<i64>, Option<i64>, Option<u64>, u64, u64);
        let (remaining, initial, entries, in_hash, undelivered): Figures = redis::pipe()
            .get(&keys.stock)
            .hget(&keys.meta, "initial_stock")
            .hget(&keys.meta, "entries")
            .hlen(&keys.ledger)
            .zcard(&keys.outbox)
            .query_async(&mut conn)
            .await?;
        Ok(ItemSnapshot {
            remaining,
            initial,
            // v5 counts its bucketed entries in meta; before, the ledger is one hash.
            reservations: entries.unwrap_or(in_hash),
            undelivered,
        })
    }

    /// Remaining units only (the sale page's approximate stock).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn remaining(&self, sale_id: u64, item_id: u64) -> Result<Option<i64>, StockError> {
        let keys = self.keys.item(sale_id, item_id);
        let mut conn = self.redis.get();
        Ok(conn.get(&keys.stock).await?)
    }
}
