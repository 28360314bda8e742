//! Stock in Redis: prewarm, atomic deduction, snapshots.
//!
//! Invariant: stock is only ever decremented inside `deduct.vN.lua`, which in the same atomic
//! step records the buyer's units and appends the reservation to the item's ledger, so
//! `initial_stock == remaining + sum(ledger quantities)` holds at every instant.

pub(crate) mod batcher;
pub mod compact;
mod figures;
mod idempotency;
mod item;
pub mod ledger;
pub mod outcome;
mod prewarm;
mod request;
pub mod scripts;
pub mod shards;

use std::sync::Arc;

use crate::{
    stock::{batcher::DeductBatcher, scripts::ScriptKind},
    stores::redis::{RedisPool, keys::Keys},
};

pub use figures::{ItemSnapshot, ItemState};
pub use item::{ItemRef, buyer_holder, holder_of_hash, key_uid, order_holder};
pub use outcome::{DeductOutcome, PrewarmOutcome, ReleaseOutcome, UnexpectedReply};
pub use prewarm::{PrewarmItem, PrewarmMode, RestoreTarget};
pub use request::{DeductRequest, stock_request};
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

/// Stock operations on Redis.
#[derive(Clone)]
pub struct StockService {
    redis: RedisPool,
    keys: Keys,
    scripts: Arc<ScriptRegistry>,
    batcher: Arc<DeductBatcher>,
    replicas: Option<ReplicaWait>,
    refills: Arc<shards::Refills>,
}

impl StockService {
    /// A service over `redis` with keys under `keys` and scripts from `scripts`, confirming
    /// nothing with replicas (answers come after the script).
    pub fn new(redis: RedisPool, keys: Keys, scripts: Arc<ScriptRegistry>) -> Self {
        Self::confirming(redis, keys, scripts, None)
    }

    /// As [`StockService::new`]; with `replicas`, every deduction is followed by `WAIT`, and a
    /// reservation fewer replicas acknowledged is [`DeductOutcome::Unconfirmed`].
    pub(crate) fn confirming(
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
            refills: Arc::default(),
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

    /// Runs the atomic reservation script for one request, in a batch with the item's other
    /// concurrent requests (see [`batcher`]).
    ///
    /// # Errors
    /// Redis failed, or the sale's script version is unknown.
    pub async fn deduct(&self, req: &DeductRequest<'_>) -> Result<DeductOutcome, StockError> {
        let script = self.scripts.get(ScriptKind::Deduct, req.script_version)?;
        let outcome = self.batcher.deduct(script, req).await?;
        if req.shards <= 1 {
            return Ok(outcome);
        }
        self.deduct_sharded(script, req, outcome).await
    }
}
