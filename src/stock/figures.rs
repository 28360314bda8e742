//! Reading an item's state in Redis: whose it is, what is left, what is still on its way.

use redis::AsyncCommands;

use super::{ItemRef, StockError, StockService};
use crate::stores::redis::keys::ItemKeys;

/// What Redis holds about an item's identity and state (meta only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemState {
    /// False when meta is missing: never warmed, expired, or lost.
    pub present: bool,
    /// The sale uid in meta (v3 on).
    pub sale_uid: Option<String>,
    /// True while a rebuild runs.
    pub restoring: bool,
    /// True when meta was written by a script version this release does not run (no
    /// `buckets`: the ledger layout before v5), as an ended sale's keys are until they expire.
    pub retired_layout: bool,
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
    /// Meta's view of an item: present (every holder of a sharded item), whose (another
    /// sale's as soon as one holder is), rebuilding (any holder).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn state(&self, item: ItemRef) -> Result<ItemState, StockError> {
        let mut whole = ItemState {
            present: true,
            ..ItemState::default()
        };
        for holder in item.holders() {
            let part = self.holder_state(&item.keys(&self.keys, holder)).await?;
            whole.present &= part.present;
            whole.restoring |= part.restoring;
            whole.retired_layout |= part.retired_layout;
            if whole.sale_uid.is_none()
                || part.sale_uid.is_some() && part.sale_uid != whole.sale_uid
            {
                whole.sale_uid = part.sale_uid.or(whole.sale_uid);
            }
        }
        Ok(whole)
    }

    /// Meta's view of one holder.
    async fn holder_state(&self, keys: &ItemKeys) -> Result<ItemState, StockError> {
        let mut conn = self.redis.get();
        let (fields, sale_uid, restoring, buckets): (u64, Option<String>, Option<String>, bool) =
            redis::pipe()
                .hlen(&keys.meta)
                .hget(&keys.meta, "sale_uid")
                .hget(&keys.meta, "restoring")
                .hexists(&keys.meta, "buckets")
                .query_async(&mut conn)
                .await?;
        Ok(ItemState {
            present: fields > 0,
            sale_uid,
            restoring: restoring.is_some(),
            retired_layout: fields > 0 && !buckets,
        })
    }

    /// True when at least the configured replicas hold every write made to the holder so far
    /// (always true without replica confirmation): a fence key written in the item's slot,
    /// then `WAIT`, in one pipeline on the node that owns the slot.
    ///
    /// # Errors
    /// Redis failed.
    pub(crate) async fn replicated(&self, keys: &ItemKeys) -> Result<bool, StockError> {
        let Some(wait) = self.replicas else {
            return Ok(true);
        };
        let fence = &keys.fence;
        let mut conn = self.redis.get();
        let (acked,): (u32,) = redis::pipe()
            .cmd("SET")
            .arg(fence)
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
    pub async fn snapshot(&self, item: ItemRef) -> Result<ItemSnapshot, StockError> {
        let mut whole = ItemSnapshot::default();
        for holder in item.holders() {
            let part = self.holder_snapshot(&item.keys(&self.keys, holder)).await?;
            let add = |a: Option<i64>, b: Option<i64>| match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            };
            whole.remaining = add(whole.remaining, part.remaining);
            whole.initial = add(whole.initial, part.initial);
            whole.reservations += part.reservations;
            whole.undelivered += part.undelivered;
        }
        Ok(whole)
    }

    /// Live figures of one holder.
    async fn holder_snapshot(&self, keys: &ItemKeys) -> Result<ItemSnapshot, StockError> {
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

    /// Remaining units only (the sale page's approximate stock): of a sharded item, the sum
    /// over its holders (units moving between two are not counted).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn remaining(&self, item: ItemRef) -> Result<Option<i64>, StockError> {
        let mut conn = self.redis.get();
        let mut total = None;
        for holder in item.holders() {
            let part: Option<i64> = conn.get(&item.keys(&self.keys, holder).stock).await?;
            if let Some(part) = part {
                total = Some(total.unwrap_or(0) + part);
            }
        }
        Ok(total)
    }
}
