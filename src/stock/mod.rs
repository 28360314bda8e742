//! Stock in Redis: prewarm, atomic deduction, snapshots.
//!
//! Invariant: stock is only ever decremented inside `deduct.vN.lua`, which in the same atomic
//! step records the buyer's units and appends the reservation to the item's ledger, so
//! `initial_stock == remaining + sum(ledger quantities)` holds at every instant.

pub mod batcher;
pub mod compact;
mod idempotency;
pub mod ledger;
pub mod outcome;
pub mod scripts;

use std::sync::Arc;

use redis::AsyncCommands;
use uuid::Uuid;

use crate::{
    stock::{batcher::DeductBatcher, scripts::ScriptKind},
    stores::redis::{RedisPool, keys::Keys},
};

pub use outcome::{DeductOutcome, PrewarmOutcome, ReleaseOutcome, UnexpectedReply};
pub use scripts::ReplicaWait;
pub use scripts::ScriptRegistry;

/// Failures of the stock layer (not business outcomes: those are [`DeductOutcome`] values).
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// Redis failed or timed out.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A sale is pinned to a script version this build lacks.
    #[error(transparent)]
    UnknownScript(#[from] scripts::UnknownScript),
    /// A script answered outside its contract.
    #[error(transparent)]
    UnexpectedReply(#[from] outcome::UnexpectedReply),
    /// The batching lane is gone (the runtime is shutting down).
    #[error("the stock batching lane has stopped")]
    Stopped,
    /// The item's queue is full, or the request waited in it too long; nothing was reserved.
    #[error("the stock store is busy")]
    Busy,
}

/// How prewarm treats an item that is already in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrewarmMode {
    /// Write only if absent (idempotent).
    Warm,
    /// Overwrite stock; refused once reservations exist.
    Force,
    /// Update window, limit, price and expiries; keep stock.
    Refresh,
    /// Start rebuilding a lost item: meta stamped with a token, other keys cleared (v3 on).
    RestoreBegin,
    /// Finish a rebuild: write the stock, lift the token (v3 on).
    RestoreEnd,
}

impl PrewarmMode {
    fn as_arg(self) -> &'static str {
        match self {
            PrewarmMode::Warm => "warm",
            PrewarmMode::Force => "force",
            PrewarmMode::Refresh => "refresh",
            PrewarmMode::RestoreBegin => "restore_begin",
            PrewarmMode::RestoreEnd => "restore_end",
        }
    }
}

/// Which hash a chunk of rebuilt state goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Order id -> reservation payload.
    Ledger,
    /// User -> units reserved.
    Buyers,
    /// User `\0` idempotency key -> "order_id units".
    Idempotency,
    /// Order id -> units a closed order gave back (v4 on).
    Released,
}

impl RestoreTarget {
    fn as_arg(self) -> &'static str {
        match self {
            RestoreTarget::Ledger => "ledger",
            RestoreTarget::Buyers => "buyers",
            RestoreTarget::Idempotency => "idem",
            RestoreTarget::Released => "released",
        }
    }
}

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

/// Everything prewarm writes for one item.
#[derive(Debug, Clone)]
pub struct PrewarmItem {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Units to put on sale.
    pub stock: u64,
    /// Most units one user may hold.
    pub per_user_limit: u32,
    /// Price per unit in cents.
    pub price_cents: u64,
    /// Window start, Unix ms.
    pub starts_at_ms: i64,
    /// Window end, Unix ms.
    pub ends_at_ms: i64,
    /// When every key expires: the end plus the grace period, Unix ms.
    pub expire_at_ms: i64,
    /// Script version the sale is pinned to.
    pub script_version: String,
    /// The sale's identity, stamped on its state (v3 on).
    pub sale_uid: String,
    /// Units the item was created with (the stock may be less when rebuilt).
    pub initial_stock: u64,
}

/// One reservation request.
#[derive(Debug, Clone)]
pub struct DeductRequest<'a> {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Script version of the sale.
    pub script_version: &'a str,
    /// The sale's identity (checked against the item's state from v3 on).
    pub sale_uid: &'a str,
    /// The buyer.
    pub user_id: &'a str,
    /// Units asked for.
    pub quantity: u32,
    /// Id the new order gets if reserved.
    pub order_id: Uuid,
    /// Reservation payload stored in the ledger (the Kafka message) before v5.
    pub payload: &'a [u8],
    /// Reservation time, Unix ms (the compact ledger stores it in place of the payload).
    pub reserved_at_ms: i64,
    /// Client's idempotency key, if any.
    pub idempotency_key: Option<&'a str>,
}

/// A [`DeductRequest`] for an item of the catalog.
pub fn stock_request<'a>(
    meta: &'a crate::stores::mysql::sales::ItemMeta,
    user_id: &'a str,
    quantity: u32,
    order_id: Uuid,
    payload: &'a [u8],
    reserved_at_ms: i64,
    idempotency_key: Option<&'a str>,
) -> DeductRequest<'a> {
    DeductRequest {
        sale_id: meta.sale_id,
        item_id: meta.item_id,
        script_version: &meta.script_version,
        sale_uid: &meta.sale_uid,
        user_id,
        quantity,
        order_id,
        payload,
        reserved_at_ms,
        idempotency_key,
    }
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

/// Stock operations on Redis.
#[derive(Clone)]
pub struct StockService {
    redis: RedisPool,
    keys: Keys,
    scripts: Arc<ScriptRegistry>,
    batcher: Arc<DeductBatcher>,
    replicas: Option<ReplicaWait>,
}

impl StockService {
    /// A service over `redis` with keys under `keys` and scripts from `scripts`, confirming
    /// nothing with replicas (answers come after the script).
    pub fn new(redis: RedisPool, keys: Keys, scripts: Arc<ScriptRegistry>) -> Self {
        Self::confirming(redis, keys, scripts, None)
    }

    /// As [`StockService::new`]; with `replicas`, every deduction is followed by `WAIT`, and a
    /// reservation fewer replicas acknowledged is [`DeductOutcome::Unconfirmed`].
    pub fn confirming(
        redis: RedisPool,
        keys: Keys,
        scripts: Arc<ScriptRegistry>,
        replicas: Option<ReplicaWait>,
    ) -> Self {
        let batcher = DeductBatcher::new(redis.clone(), keys.clone(), scripts.clone(), replicas);
        Self {
            redis,
            keys,
            scripts,
            batcher: Arc::new(batcher),
            replicas,
        }
    }

    /// The replica confirmation deductions wait for, if any.
    pub fn replicas(&self) -> Option<ReplicaWait> {
        self.replicas
    }

    /// The key builder.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The Redis connections.
    pub fn redis(&self) -> &RedisPool {
        &self.redis
    }

    /// The script registry.
    pub fn scripts(&self) -> &Arc<ScriptRegistry> {
        &self.scripts
    }

    /// Writes (or refreshes) one item's stock and metadata, every key expiring at
    /// `item.expire_at_ms`.
    ///
    /// # Errors
    /// Redis failed or the sale's script version is unknown.
    pub async fn prewarm(
        &self,
        item: &PrewarmItem,
        mode: PrewarmMode,
    ) -> Result<PrewarmOutcome, StockError> {
        self.prewarm_with_token(item, mode, "").await
    }

    /// [`StockService::prewarm`] with the token of a rebuild (`RestoreBegin`, `RestoreEnd`).
    ///
    /// # Errors
    /// Redis failed or the sale's script version is unknown.
    pub async fn prewarm_with_token(
        &self,
        item: &PrewarmItem,
        mode: PrewarmMode,
        token: &str,
    ) -> Result<PrewarmOutcome, StockError> {
        let script = self
            .scripts
            .get(ScriptKind::Prewarm, &item.script_version)?;
        let keys = self.keys.item(item.sale_id, item.item_id);
        let mut conn = self.redis.get();
        let reply: Vec<redis::Value> = script
            .invoke(&mut conn, &keys.as_script_keys(), |cmd| {
                cmd.arg(item.stock)
                    .arg(item.per_user_limit)
                    .arg(item.starts_at_ms)
                    .arg(item.ends_at_ms)
                    .arg(item.expire_at_ms)
                    .arg(item.price_cents)
                    .arg(&item.script_version)
                    .arg(mode.as_arg())
                    .arg(&item.sale_uid)
                    .arg(item.initial_stock)
                    .arg(token);
            })
            .await?;
        Ok(PrewarmOutcome::from_reply(reply)?)
    }

    /// Writes one chunk of an item's rebuilt state, `pairs` of field and value, under the token
    /// of the rebuild. Returns false when the item is no longer being rebuilt under `token`.
    ///
    /// # Errors
    /// Redis failed, or the sale's version has no restore script (before v3).
    pub async fn restore_chunk(
        &self,
        sale_id: u64,
        item_id: u64,
        script_version: &str,
        token: &str,
        target: RestoreTarget,
        pairs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, StockError> {
        let script = self.scripts.get(ScriptKind::Restore, script_version)?;
        let keys = self.keys.item(sale_id, item_id);
        let mut conn = self.redis.get();
        let reply: Vec<redis::Value> = script
            .invoke(&mut conn, &keys.as_script_keys(), |cmd| {
                cmd.arg(token).arg(target.as_arg());
                for (field, value) in pairs {
                    cmd.arg(field).arg(value);
                }
            })
            .await?;
        match outcome::int_at(&reply, 0) {
            Some(1) => Ok(true),
            Some(-1) => Ok(false),
            _ => Err(UnexpectedReply::new("restore", reply).into()),
        }
    }

    /// Gives the units of closed orders back (`release.vN`, v4 on): one call for a batch of
    /// one item's orders, one outcome per order, each order released at most once.
    ///
    /// # Errors
    /// Redis failed, the reply broke the contract, or the sale's version has no release script.
    pub async fn release(
        &self,
        sale_id: u64,
        item_id: u64,
        script_version: &str,
        sale_uid: &str,
        order_ids: &[Uuid],
    ) -> Result<Vec<ReleaseOutcome>, StockError> {
        let script = self.scripts.get(ScriptKind::Release, script_version)?;
        let compact = crate::domain::script_version::has_compact_ledger(script.version);
        let keys = self.keys.item(sale_id, item_id);
        let mut conn = self.redis.get();
        let replies: Vec<redis::Value> = script
            .invoke(&mut conn, &keys.as_script_keys(), |cmd| {
                cmd.arg(sale_uid);
                for id in order_ids {
                    if compact {
                        cmd.arg(id.as_bytes());
                    } else {
                        cmd.arg(id.to_string());
                    }
                }
            })
            .await?;
        if replies.len() != order_ids.len() {
            return Err(UnexpectedReply::new("release", replies).into());
        }
        replies
            .into_iter()
            .map(|r| match r {
                redis::Value::Array(r) => Ok(ReleaseOutcome::from_reply(r)?),
                other => Err(UnexpectedReply::new("release", vec![other]).into()),
            })
            .collect()
    }

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

    /// Runs the atomic reservation script for one request, in a batch with the item's other
    /// concurrent requests (see [`batcher`]).
    ///
    /// # Errors
    /// Redis failed, or the sale's script version is unknown.
    pub async fn deduct(&self, req: &DeductRequest<'_>) -> Result<DeductOutcome, StockError> {
        let script = self.scripts.get(ScriptKind::Deduct, req.script_version)?;
        self.batcher.deduct(script, req).await
    }

    /// True when at least the configured replicas hold every write made to the item so far
    /// (always true without replica confirmation): a fence key written in the item's slot,
    /// then `WAIT`, in one pipeline on the node that owns the slot.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn replicated(&self, sale_id: u64, item_id: u64) -> Result<bool, StockError> {
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
