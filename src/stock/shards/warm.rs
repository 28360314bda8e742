//! Warming a sharded item: every holder gets the v5 state of a whole item, stamped with the
//! sale's uid, the shards half their share of the stock and the central bucket the rest.

use super::{holders, initial_split};
use crate::{
    stock::{ItemRef, PrewarmItem, PrewarmMode, PrewarmOutcome, StockError, StockService},
    stores::redis::keys::Holder,
};

impl StockService {
    /// [`StockService::prewarm_with_token`] for an item of more than one shard: each holder in
    /// turn (shards first, the central bucket last), stopping at the first refusal. Warmed
    /// when one holder was, already warmed when all were; the remaining units are the sum.
    pub(in crate::stock) async fn prewarm_sharded(
        &self,
        item: &PrewarmItem,
        mode: PrewarmMode,
        token: &str,
    ) -> Result<PrewarmOutcome, StockError> {
        let (each, central) = initial_split(item.stock, item.shards);
        // What each holder started with, as the item was created: a shard's refills are half
        // of it, and its ledger's bucket count follows it.
        let (started_each, started_central) = initial_split(item.initial_stock, item.shards);
        let mut order = holders(item.shards);
        order.rotate_left(1);
        let (mut total, mut warmed, mut begun, mut restored) = (0, false, 0, false);
        for holder in order {
            let stock = if holder == Holder::Central {
                central
            } else {
                each
            };
            // Restores put MySQL's remaining units in the central bucket: the shards hold
            // only their orders, and get units moved to them as buyers come.
            let stock = match mode {
                PrewarmMode::RestoreEnd if holder != Holder::Central => 0,
                PrewarmMode::RestoreEnd => item.stock,
                _ => stock,
            };
            let initial_stock = if holder == Holder::Central {
                started_central
            } else {
                started_each
            };
            let part = PrewarmItem {
                stock,
                initial_stock,
                ..item.clone()
            };
            if mode == PrewarmMode::Force {
                self.forget_moves(item, holder).await?;
            }
            match self.prewarm_holder(&part, holder, mode, token).await? {
                PrewarmOutcome::Warmed { remaining } => (total, warmed) = (total + remaining, true),
                PrewarmOutcome::AlreadyWarmed { remaining }
                | PrewarmOutcome::Refreshed { remaining } => total += remaining,
                PrewarmOutcome::RestoreBegun => {
                    self.forget_moves(item, holder).await?;
                    begun += 1;
                }
                PrewarmOutcome::Restored { remaining } => {
                    (total, restored) = (total + remaining, true);
                }
                refused => return Ok(refused),
            }
        }
        Ok(match mode {
            PrewarmMode::RestoreBegin if begun > 0 => PrewarmOutcome::RestoreBegun,
            PrewarmMode::RestoreEnd if restored => PrewarmOutcome::Restored { remaining: total },
            PrewarmMode::Refresh => PrewarmOutcome::Refreshed { remaining: total },
            _ if warmed => PrewarmOutcome::Warmed { remaining: total },
            _ => PrewarmOutcome::AlreadyWarmed { remaining: total },
        })
    }

    /// Drops a holder's record of moves (a forced warm, or a rebuild that starts over).
    async fn forget_moves(&self, item: &PrewarmItem, holder: Holder) -> Result<(), StockError> {
        let keys = self
            .keys()
            .holder(item.sale_id, item.item_id, item.key_uid(), holder);
        let mut conn = self.redis().get();
        let () = redis::pipe()
            .atomic()
            .del(&[&keys.moves_out, &keys.moves_pending, &keys.moves_in])
            .ignore()
            .hdel(&keys.meta, &["moved_in", "moved_out"])
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Stops a sharded item whose state is partly lost from selling on the holders that
    /// still have theirs, so that a rebuild from MySQL can take the whole item: each holder
    /// of this sale not already being rebuilt is marked `restoring` (its buys then answer
    /// `recovering`, and its moves wait). Returns the holders marked.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn fence_sharded(&self, item: ItemRef, sale_uid: &str) -> Result<u32, StockError> {
        let mut fenced = 0;
        let mut conn = self.redis().get();
        for holder in item.holders() {
            let keys = item.keys(self.keys(), holder);
            let (owner, restoring): (Option<String>, Option<String>) = redis::pipe()
                .hget(&keys.meta, "sale_uid")
                .hget(&keys.meta, "restoring")
                .query_async(&mut conn)
                .await?;
            if owner.as_deref() == Some(sale_uid) && restoring.is_none() {
                // A meta that expired between the two calls would be left with `restoring`
                // alone; prewarm's restore refuses such a holder (state without an owner)
                // rather than writing over it.
                let _: bool = redis::cmd("HSETNX")
                    .arg(&keys.meta)
                    .arg("restoring")
                    .arg("fence")
                    .query_async(&mut conn)
                    .await?;
                fenced += 1;
            }
        }
        Ok(fenced)
    }

    /// Reservations of the item not yet acknowledged by Kafka, over its holders.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn undelivered(&self, item: ItemRef) -> Result<u64, StockError> {
        let mut conn = self.redis().get();
        let mut total = 0;
        for holder in item.holders() {
            let n: u64 = redis::cmd("ZCARD")
                .arg(item.keys(self.keys(), holder).outbox)
                .query_async(&mut conn)
                .await?;
            total += n;
        }
        Ok(total)
    }
}
