//! Writing an item's state: warming, refreshing, rebuilding it chunk by chunk after a loss, and
//! giving closed orders' units back.

use uuid::Uuid;

use std::collections::HashMap;

use super::ItemRef;
use crate::stores::redis::keys::{Holder, ItemKeys};

use super::{
    PrewarmOutcome, ReleaseOutcome, StockError, StockService, UnexpectedReply, outcome,
    scripts::ScriptKind,
};

/// Field/value pairs of a rebuilt hash.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

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
    /// Stock shards (1: the item is one holder).
    pub shards: u16,
}

impl PrewarmItem {
    /// The sale's uid as its keys carry it (v6 on).
    pub fn key_uid(&self) -> Option<u128> {
        super::item::key_uid(&self.script_version, &self.sale_uid)
    }
}

impl StockService {
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
        if item.shards > 1 {
            return self.prewarm_sharded(item, mode, token).await;
        }
        self.prewarm_holder(item, Holder::Whole, mode, token).await
    }

    /// The prewarm script on one holder of the item's stock.
    pub(super) async fn prewarm_holder(
        &self,
        item: &PrewarmItem,
        holder: Holder,
        mode: PrewarmMode,
        token: &str,
    ) -> Result<PrewarmOutcome, StockError> {
        let script = self
            .scripts
            .get(ScriptKind::Prewarm, &item.script_version)?;
        let keys = self
            .keys
            .holder(item.sale_id, item.item_id, item.key_uid(), holder);
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
        item: ItemRef,
        script_version: &str,
        token: &str,
        target: RestoreTarget,
        pairs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, StockError> {
        if !item.sharded() {
            let keys = item.keys(&self.keys, Holder::Whole);
            return self
                .restore_holder(&keys, script_version, token, target, pairs)
                .await;
        }
        // A sharded item's orders and buyers go to the buyers' shards (an order id carries
        // its buyer's hash).
        let mut by_holder: HashMap<Holder, Pairs> = HashMap::new();
        for (field, value) in pairs {
            let holder = match target {
                RestoreTarget::Buyers => {
                    super::buyer_holder(&String::from_utf8_lossy(field), item.shards)
                }
                _ => match Uuid::from_slice(field) {
                    Ok(id) => super::order_holder(&id, item.shards),
                    Err(_) => Holder::Central,
                },
            };
            by_holder
                .entry(holder)
                .or_default()
                .push((field.clone(), value.clone()));
        }
        for (holder, pairs) in by_holder {
            let keys = item.keys(&self.keys, holder);
            if !self
                .restore_holder(&keys, script_version, token, target, &pairs)
                .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The restore script on one holder.
    async fn restore_holder(
        &self,
        keys: &ItemKeys,
        script_version: &str,
        token: &str,
        target: RestoreTarget,
        pairs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool, StockError> {
        let script = self.scripts.get(ScriptKind::Restore, script_version)?;
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
        item: ItemRef,
        script_version: &str,
        sale_uid: &str,
        order_ids: &[Uuid],
    ) -> Result<Vec<ReleaseOutcome>, StockError> {
        // A sharded item's orders sit in their buyers' shards: one call per shard.
        let mut by_holder: HashMap<Holder, Vec<usize>> = HashMap::new();
        for (i, id) in order_ids.iter().enumerate() {
            by_holder
                .entry(super::order_holder(id, item.shards))
                .or_default()
                .push(i);
        }
        let mut outcomes = vec![ReleaseOutcome::NotWarmed; order_ids.len()];
        for (holder, at) in by_holder {
            let ids: Vec<Uuid> = at.iter().map(|&i| order_ids[i]).collect();
            let keys = item.keys(&self.keys, holder);
            let got = self
                .release_holder(&keys, script_version, sale_uid, &ids)
                .await?;
            for (i, outcome) in at.into_iter().zip(got) {
                outcomes[i] = outcome;
            }
        }
        Ok(outcomes)
    }

    /// The release script on one holder.
    async fn release_holder(
        &self,
        keys: &ItemKeys,
        script_version: &str,
        sale_uid: &str,
        order_ids: &[Uuid],
    ) -> Result<Vec<ReleaseOutcome>, StockError> {
        let script = self.scripts.get(ScriptKind::Release, script_version)?;
        let compact = crate::domain::script_version::has_compact_ledger(script.version);
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
}
