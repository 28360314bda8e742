//! Putting a sale's state into Redis: a fresh warm before anything can have sold, or a rebuild
//! from MySQL once it may have (see [`super::recovery`]). Never a fresh warm of a sale that
//! may have sold: that would sell its units again.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    PREWARM_LOCK_TTL, PrewarmReport, PrewarmedItem, SaleAdmin,
    recovery::{StillDraining, needs_recovery},
};
use crate::{
    sales::error::{Refusal, SaleError},
    stock::{PrewarmItem, PrewarmMode, PrewarmOutcome},
    stores::mysql::sales::{self, ItemRow, SaleRecord, SaleRow},
};

/// Longest a `prewarm` request waits for the drain before a recovery; it goes on in the
/// background after that.
const REQUEST_DRAIN_WAIT: Duration = Duration::from_secs(20);
/// Wait between background recovery attempts that failed.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl SaleAdmin {
    /// Puts a sale's state into Redis. Idempotent: a warmed sale is left as it is, unless
    /// `force` (allowed only before the start and while no reservation exists). A sale that may
    /// have sold and whose state is gone is rebuilt from MySQL instead (it waits for the
    /// consumer first, up to a bound; then it answers `recovering` and goes on in the
    /// background).
    ///
    /// # Errors
    /// 404, 409 (started, ended, busy, reservations exist, another sale's state), 503
    /// (recovering), or a store failure.
    pub async fn prewarm(&self, id: u64, force: bool) -> Result<PrewarmReport, SaleError> {
        let deadline = Some(Instant::now() + REQUEST_DRAIN_WAIT);
        let result = self
            .prewarm_until(id, force, Instant::now(), deadline)
            .await;
        if matches!(result, Err(SaleError::Recovering)) {
            self.recoveries.request(id);
        }
        result
    }

    /// Recovers `sale_id` (lost state seen at `seen_at`), retrying until it succeeds, the
    /// sale's keys would have expired anyway, or `shutdown`.
    pub(super) async fn recover_in_background(
        &self,
        sale_id: u64,
        seen_at: Instant,
        shutdown: &CancellationToken,
    ) {
        loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => break,
                r = self.prewarm_until(sale_id, false, seen_at, None) => r,
            };
            match attempt {
                Ok(report) => {
                    tracing::info!(sale_id, items = ?report.items, "recovery finished");
                    self.notify(sale_id).await;
                    break;
                }
                Err(SaleError::NotFound) => break,
                Err(e) if e.is(Refusal::Expired) => break,
                Err(e) if e.is(Refusal::ScriptRetired) || e.is(Refusal::ForeignState) => {
                    tracing::error!(sale_id, error.message = %e, "the sale's Redis state cannot be recovered automatically; it needs an operator");
                    break;
                }
                Err(e) => {
                    tracing::warn!(sale_id, error.message = %e, "recovery attempt failed; trying again");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
            }
        }
        self.recoveries.finished(sale_id);
    }

    async fn prewarm_until(
        &self,
        id: u64,
        force: bool,
        seen_at: Instant,
        deadline: Option<Instant>,
    ) -> Result<PrewarmReport, SaleError> {
        let guard = self.prewarm_lock(id).await?;
        let result = self
            .prewarm_locked(id, force, seen_at, deadline, &guard)
            .await;
        self.release_prewarm_lock(id, &guard).await;
        result
    }

    async fn prewarm_locked(
        &self,
        id: u64,
        force: bool,
        seen_at: Instant,
        deadline: Option<Instant>,
        guard: &crate::stores::redis::lock::LockGuard,
    ) -> Result<PrewarmReport, SaleError> {
        let record = sales::get_sale(&self.db, id)
            .await?
            .ok_or(SaleError::NotFound)?;
        let sale = &record.sale;
        if !crate::domain::script_version::is_live(&sale.script_version) {
            return Err(retired(sale.id, &sale.script_version));
        }
        let now = Utc::now();
        if force && now >= sale.starts_at {
            return Err(SaleError::refused(
                Refusal::Started,
                "force re-warm is only allowed before the sale starts",
            ));
        }
        let expires_at = self.expiry_of(sale.ends_at);
        if expires_at <= now + chrono::Duration::seconds(1) {
            return Err(SaleError::refused(
                Refusal::Expired,
                "the sale and its grace period are over; nothing to warm",
            ));
        }
        let recovering = needs_recovery(sale, now);
        if recovering {
            self.drain_if_lost(&record, seen_at, deadline, guard)
                .await?;
        } else {
            sales::mark_warming(&self.db, id).await?;
        }
        let mut items = Vec::with_capacity(record.items.len());
        for item in &record.items {
            let warm = warm_item(sale, item, item.initial_stock, expires_at);
            let (outcome, remaining) = if recovering {
                self.recover_item(&record, item, &warm, expires_at).await?
            } else {
                self.warm_one(item, &warm, force).await?
            };
            items.push(PrewarmedItem {
                item_id: item.id,
                outcome,
                remaining,
            });
        }
        sales::mark_warmed(&self.db, id).await?;
        for item in &record.items {
            self.catalog.forget(item.id).await;
        }
        tracing::info!(sale_id = id, force, expires_at = %expires_at, items = ?items, "sale warmed");
        Ok(PrewarmReport {
            sale_id: id,
            expires_at,
            items,
        })
    }

    /// Refuses a new sale whose ids already name another sale's state in Redis (two databases
    /// sharing one Redis and key prefix): warming it would fail, and its buyers would be
    /// refused. Read-only; prewarm's script checks again when it writes.
    pub(super) async fn refuse_foreign_state(&self, record: &SaleRecord) -> Result<(), SaleError> {
        for item in &record.items {
            let state = self
                .stock
                .state(crate::stock::ItemRef::of(&record.sale, item))
                .await?;
            if state.present && state.sale_uid.as_deref() != Some(record.sale.uid.as_str()) {
                return Err(foreign_state(item.id));
            }
        }
        Ok(())
    }

    /// A fresh warm: nothing can have sold yet.
    async fn warm_one(
        &self,
        item: &ItemRow,
        warm: &PrewarmItem,
        force: bool,
    ) -> Result<(&'static str, i64), SaleError> {
        let mode = if force {
            PrewarmMode::Force
        } else {
            PrewarmMode::Warm
        };
        match self.stock.prewarm(warm, mode).await? {
            PrewarmOutcome::Warmed { remaining } => Ok(("warmed", remaining)),
            PrewarmOutcome::AlreadyWarmed { remaining } => Ok(("already_warmed", remaining)),
            PrewarmOutcome::HasReservations { .. } => Err(SaleError::refused(
                Refusal::HasReservations,
                format!(
                    "item {} already has reservations; it cannot be re-warmed",
                    item.id
                ),
            )),
            PrewarmOutcome::BadExpiry => Err(SaleError::refused(
                Refusal::Expired,
                "the computed expiry is not in the future",
            )),
            PrewarmOutcome::ForeignState => Err(foreign_state(item.id)),
            PrewarmOutcome::Restoring => Err(SaleError::Recovering),
            other => Err(SaleError::Unexpected(format!(
                "prewarm of item {} answered {other:?}",
                item.id
            ))),
        }
    }

    /// A sale that may have sold: its items that still have their state keep it, lost ones
    /// are rebuilt from MySQL.
    async fn recover_item(
        &self,
        record: &SaleRecord,
        item: &ItemRow,
        warm: &PrewarmItem,
        expires_at: chrono::DateTime<Utc>,
    ) -> Result<(&'static str, i64), SaleError> {
        let whole = crate::stock::ItemRef::of(&record.sale, item);
        let state = self.stock.state(whole).await?;
        if state.present && !state.restoring {
            return match self.stock.prewarm(warm, PrewarmMode::Warm).await? {
                PrewarmOutcome::AlreadyWarmed { remaining } => Ok(("already_warmed", remaining)),
                PrewarmOutcome::ForeignState => Err(foreign_state(item.id)),
                other => Err(SaleError::Unexpected(format!(
                    "checking item {} answered {other:?}",
                    item.id
                ))),
            };
        }
        match self
            .recovery
            .rebuild_item(&record.sale, item, expires_at)
            .await?
        {
            Some(remaining) => Ok(("recovered", remaining)),
            None => Ok((
                "already_warmed",
                self.stock.remaining(whole).await?.unwrap_or(0),
            )),
        }
    }

    /// Before rebuilding anything of a sale that may have sold: if one of its items lost its
    /// state, wait until every order on its way has reached MySQL (renewing the lock).
    async fn drain_if_lost(
        &self,
        record: &SaleRecord,
        seen_at: Instant,
        deadline: Option<Instant>,
        guard: &crate::stores::redis::lock::LockGuard,
    ) -> Result<(), SaleError> {
        let mut lost = false;
        for item in &record.items {
            let whole = crate::stock::ItemRef::of(&record.sale, item);
            let state = self.stock.state(whole).await?;
            let item_lost = !state.present || state.restoring;
            lost |= item_lost;
            if item_lost && whole.sharded() {
                self.fence_sharded(record, whole, deadline, guard).await?;
            }
        }
        if !lost {
            return Ok(());
        }
        let drain = self.recovery.drain(record.sale.id, seen_at, deadline);
        tokio::pin!(drain);
        loop {
            tokio::select! {
                r = &mut drain => {
                    return r.map_err(|StillDraining { lag }| {
                        tracing::info!(sale_id = record.sale.id, lag, "recovery still waits for the consumer; answering recovering");
                        SaleError::Recovering
                    });
                }
                () = tokio::time::sleep(PREWARM_LOCK_TTL / 3) => {
                    if !self.lock.renew(guard).await.unwrap_or(false) {
                        tracing::warn!(sale_id = record.sale.id, "lost the prewarm lock while waiting for the drain");
                    }
                }
            }
        }
    }
}

impl SaleAdmin {
    /// A sharded item that lost part of its state is rebuilt whole: its other holders stop
    /// selling first, and what they reserved reaches Kafka (the relay sends it) before the
    /// drain waits for MySQL to hold it.
    async fn fence_sharded(
        &self,
        record: &SaleRecord,
        item: crate::stock::ItemRef,
        deadline: Option<Instant>,
        guard: &crate::stores::redis::lock::LockGuard,
    ) -> Result<(), SaleError> {
        let fenced = self.stock.fence_sharded(item, &record.sale.uid).await?;
        tracing::warn!(
            sale_id = item.sale_id,
            item_id = item.item_id,
            fenced,
            "part of a sharded item's state is lost: its other shards stop selling until it is rebuilt"
        );
        let mut renewed = Instant::now();
        loop {
            let waiting = self.stock.undelivered(item).await?;
            if waiting == 0 {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                tracing::info!(
                    item_id = item.item_id,
                    waiting,
                    "recovery still waits for the relay to send a sharded item's reservations; answering recovering"
                );
                return Err(SaleError::Recovering);
            }
            if renewed.elapsed() > PREWARM_LOCK_TTL / 3 {
                if !self.lock.renew(guard).await.unwrap_or(false) {
                    tracing::warn!(
                        sale_id = item.sale_id,
                        "lost the prewarm lock while waiting for the relay"
                    );
                }
                renewed = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What Redis is given for one item: the sale's window and the item's terms, with `stock` units
/// on sale and every key expiring at `expire_at`.
pub(super) fn warm_item(
    sale: &SaleRow,
    item: &ItemRow,
    stock: u32,
    expire_at: chrono::DateTime<Utc>,
) -> PrewarmItem {
    PrewarmItem {
        sale_id: sale.id,
        item_id: item.id,
        stock: u64::from(stock),
        per_user_limit: item.per_user_limit,
        price_cents: item.price_cents,
        starts_at_ms: sale.starts_at.timestamp_millis(),
        ends_at_ms: sale.ends_at.timestamp_millis(),
        expire_at_ms: expire_at.timestamp_millis(),
        script_version: sale.script_version.clone(),
        sale_uid: sale.uid.clone(),
        initial_stock: u64::from(item.initial_stock),
        shards: item.shards,
    }
}

/// The refusal of a sale pinned to a script version this release no longer runs.
fn retired(sale_id: u64, version: &str) -> SaleError {
    use crate::domain::script_version::{CURRENT, KNOWN_VERSIONS};
    SaleError::refused(
        Refusal::ScriptRetired,
        format!(
            "sale {sale_id} is pinned to script {version}, which this release no longer runs (it runs {}): let the sale run to its end on the release before this one; a sale that has not started can be moved by setting its script_version to {CURRENT} in MySQL and warming it again",
            KNOWN_VERSIONS.join(" and ")
        ),
    )
}

fn foreign_state(item_id: u64) -> SaleError {
    tracing::error!(
        item_id,
        "the Redis keys of this item hold another sale's state; refusing to write over it or sell from it (two environments sharing one Redis, or a MySQL restored from backup?)"
    );
    SaleError::refused(
        Refusal::ForeignState,
        format!("item {item_id}'s Redis keys hold another sale's state; nothing was written"),
    )
}
