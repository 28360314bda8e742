//! The rebuild of one item from MySQL, fenced by a token: read the orders, begin the restore,
//! write the state back in chunks, end the restore.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Recovery,
    state::{Pairs, rebuilt_state},
};
use crate::{
    sales::{
        error::{Refusal, SaleError},
        prewarm::warm_item,
    },
    stock::{ItemRef, PrewarmItem, PrewarmMode, PrewarmOutcome, RestoreTarget},
    stores::mysql::{
        orders,
        sales::{ItemRow, SaleRow},
    },
};

/// Field/value pairs per restore call: a few hundred entries run in well under a millisecond.
const CHUNK: usize = 500;

impl Recovery {
    /// Rebuilds one item's state from MySQL, expiring at `expire_at`. Returns the units left
    /// on sale, or `None` when the item turned out to be warmed already (another instance
    /// finished first).
    ///
    /// # Errors
    /// The keys hold another sale's state, another rebuild took over, or a store failed.
    pub(crate) async fn rebuild_item(
        &self,
        sale: &SaleRow,
        item: &ItemRow,
        expire_at: DateTime<Utc>,
    ) -> Result<Option<i64>, SaleError> {
        let (placed, remaining) = self.read_orders(item.id).await?;
        let warm = warm_item(sale, item, remaining, expire_at);
        let token = Uuid::new_v4().simple().to_string();
        if !self.begin_restore(&warm, &token).await? {
            return Ok(None);
        }
        let compact = crate::domain::script_version::has_compact_ledger(&sale.script_version);
        let state = rebuilt_state(&placed, compact);
        for (target, pairs) in [
            (RestoreTarget::Ledger, state.ledger),
            (RestoreTarget::Buyers, state.buyers),
            (RestoreTarget::Idempotency, state.idem),
            (RestoreTarget::Released, state.released),
        ] {
            self.write_hash(&warm, &token, target, &pairs).await?;
        }
        self.end_restore(&warm, &token, placed.len())
            .await
            .map(Some)
    }

    /// The orders MySQL honoured for the item and its remaining stock, read in one transaction.
    async fn read_orders(&self, item_id: u64) -> Result<(Vec<orders::OrderRow>, u32), SaleError> {
        let mut tx = self.db.begin().await?;
        let placed = orders::ledger_orders_in(&mut tx, item_id).await?;
        let remaining = crate::stores::mysql::sales::item_stock(&mut tx, item_id).await?;
        tx.commit().await?;
        Ok((placed, remaining))
    }

    /// Takes the item over for the rebuild under `token`; false when it turned out to be
    /// warmed already.
    async fn begin_restore(&self, warm: &PrewarmItem, token: &str) -> Result<bool, SaleError> {
        match self
            .stock
            .prewarm_with_token(warm, PrewarmMode::RestoreBegin, token)
            .await?
        {
            PrewarmOutcome::RestoreBegun => Ok(true),
            PrewarmOutcome::AlreadyWarmed { .. } => Ok(false),
            PrewarmOutcome::ForeignState => Err(SaleError::refused(
                Refusal::ForeignState,
                format!(
                    "item {}'s Redis keys hold another sale's state; nothing was written",
                    warm.item_id
                ),
            )),
            other => Err(unexpected(warm.item_id, "restore_begin", &other)),
        }
    }

    /// Writes one rebuilt hash in chunks, as long as the rebuild still holds `token`.
    async fn write_hash(
        &self,
        warm: &PrewarmItem,
        token: &str,
        target: RestoreTarget,
        pairs: &Pairs,
    ) -> Result<(), SaleError> {
        for chunk in pairs.chunks(CHUNK) {
            let written = self
                .stock
                .restore_chunk(
                    ItemRef {
                        sale_id: warm.sale_id,
                        item_id: warm.item_id,
                        shards: warm.shards,
                        uid: warm.key_uid(),
                    },
                    &warm.script_version,
                    token,
                    target,
                    chunk,
                )
                .await?;
            if !written {
                return Err(superseded(warm.item_id));
            }
        }
        Ok(())
    }

    /// Ends the rebuild: the item sells again with the units it has left.
    async fn end_restore(
        &self,
        warm: &PrewarmItem,
        token: &str,
        orders: usize,
    ) -> Result<i64, SaleError> {
        match self
            .stock
            .prewarm_with_token(warm, PrewarmMode::RestoreEnd, token)
            .await?
        {
            PrewarmOutcome::Restored { remaining } => {
                tracing::warn!(
                    sale_id = warm.sale_id,
                    item_id = warm.item_id,
                    orders,
                    remaining,
                    "item rebuilt in Redis from MySQL; it sells again"
                );
                Ok(remaining)
            }
            PrewarmOutcome::NotRestoring => Err(superseded(warm.item_id)),
            other => Err(unexpected(warm.item_id, "restore_end", &other)),
        }
    }
}

fn superseded(item_id: u64) -> SaleError {
    SaleError::refused(
        Refusal::RecoverySuperseded,
        format!("another rebuild of item {item_id} took over; it finishes the work"),
    )
}

fn unexpected(item_id: u64, step: &str, outcome: &PrewarmOutcome) -> SaleError {
    SaleError::Unexpected(format!(
        "rebuilding item {item_id}: {step} answered {outcome:?}"
    ))
}
