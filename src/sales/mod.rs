//! The admin side of a sale: create, show, list, change, prewarm.
//!
//! MySQL is the source of truth; Redis receives a sale's stock by prewarm, under a distributed
//! lock so two instances never warm one sale at once. Every Redis key of a sale expires at the
//! sale's end plus the grace period, computed in one place and never zero or negative.

pub mod catalog;
pub mod error;
pub mod invalidation;
pub mod live;
pub mod page;
mod patch;
mod prewarm;
pub mod recovery;
mod scheduler;
pub mod view;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::MySqlPool;

use crate::{
    config::SaleSettings,
    domain::NewSale,
    sales::catalog::Catalog,
    sales::error::{Refusal, SaleError},
    stock::StockService,
    stores::{
        mysql::{
            orders,
            sales::{self, SaleRecord},
        },
        redis::lock::{LockGuard, RedisLock},
    },
};

pub use recovery::{Recoveries, Recovery};
pub use view::{ItemView, Phase, SaleView};

/// How long the prewarm lock lives if its holder dies mid-way (renewed while a recovery
/// waits).
const PREWARM_LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a prewarm waits for another instance's prewarm of the same sale.
const PREWARM_LOCK_WAIT: Duration = Duration::from_secs(5);

/// What a prewarm did for one item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PrewarmedItem {
    /// Item id.
    pub item_id: u64,
    /// `warmed`, `already_warmed`, or `recovered` (rebuilt from MySQL after its state was lost).
    pub outcome: &'static str,
    /// Units in Redis afterwards.
    pub remaining: i64,
}

/// What a prewarm did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PrewarmReport {
    /// Sale id.
    pub sale_id: u64,
    /// When every key expires.
    pub expires_at: DateTime<Utc>,
    /// Per item.
    pub items: Vec<PrewarmedItem>,
}

/// Hooks run after a sale changed (cache invalidation of the read path).
pub(crate) trait SaleChangeListener: Send + Sync {
    /// Called after a sale was created or changed in MySQL and Redis.
    fn sale_changed(&self, sale_id: u64) -> futures::future::BoxFuture<'_, ()>;
}

/// A sale in the list: the stored row, its phase and how many items it has.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SaleListed {
    /// The stored sale.
    #[serde(flatten)]
    pub sale: sales::SaleRow,
    /// Computed from the window.
    pub phase: view::Phase,
    /// Items on sale.
    pub item_count: u64,
}

/// Admin operations on sales.
#[derive(Clone)]
pub struct SaleAdmin {
    db: MySqlPool,
    stock: StockService,
    lock: RedisLock,
    catalog: Catalog,
    settings: SaleSettings,
    recovery: Recovery,
    recoveries: Recoveries,
    listeners: Vec<Arc<dyn SaleChangeListener>>,
}

impl SaleAdmin {
    /// Admin operations over these stores.
    pub fn new(
        db: MySqlPool,
        stock: StockService,
        lock: RedisLock,
        catalog: Catalog,
        settings: SaleSettings,
        recovery: Recovery,
        recoveries: Recoveries,
    ) -> Self {
        Self {
            db,
            stock,
            lock,
            catalog,
            settings,
            recovery,
            recoveries,
            listeners: Vec::new(),
        }
    }

    /// Adds a listener told about every change.
    pub(crate) fn with_listener(mut self, listener: Arc<dyn SaleChangeListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    async fn notify(&self, sale_id: u64) {
        for l in &self.listeners {
            l.sale_changed(sale_id).await;
        }
    }

    /// When a sale's keys expire: its end plus the grace period.
    pub(crate) fn expiry_of(&self, ends_at: DateTime<Utc>) -> DateTime<Utc> {
        ends_at + chrono::Duration::seconds(self.settings.grace_secs.max(1) as i64)
    }

    /// Creates a sale and, if it starts within the prewarm lead time, warms it.
    ///
    /// # Errors
    /// Invalid input (nothing written), 409 `foreign_state` when a sale to warm at once would
    /// meet another sale's Redis state under its ids (nothing written), or a store failure.
    pub async fn create(&self, sale: NewSale) -> Result<(SaleView, Option<String>), SaleError> {
        self.refuse_shards_off_cluster(&sale)?;
        let pending = sales::begin_sale(&self.db, &sale, &self.settings.script_version).await?;
        let lead = chrono::Duration::seconds(self.settings.prewarm_lead_secs as i64);
        let warm_now = pending.record.sale.starts_at - Utc::now() <= lead;
        if warm_now {
            // Dropping `pending` on a refusal rolls the insert back.
            self.refuse_foreign_state(&pending.record).await?;
        }
        let record = pending.commit().await?;
        let id = record.sale.id;
        tracing::info!(sale_id = id, items = record.items.len(), starts_at = %record.sale.starts_at, "sale created");
        let mut prewarm_error = None;
        if warm_now && let Err(e) = self.prewarm(id, false).await {
            tracing::error!(sale_id = id, error.message = %e, "prewarm at creation failed; the scheduler will retry");
            prewarm_error = Some(e.to_string());
        }
        self.notify(id).await;
        Ok((self.view(id).await?, prewarm_error))
    }

    /// Stock shards spread an item over a Cluster's masters; on one Redis node they would
    /// only add moves, so they are refused there, as under scripts before v5 (nothing
    /// written).
    fn refuse_shards_off_cluster(&self, sale: &NewSale) -> Result<(), SaleError> {
        let Some(i) = sale.items.iter().position(|i| i.shards > 1) else {
            return Ok(());
        };
        let field = format!("items[{i}].shards");
        if !self.stock.redis().is_cluster() {
            return Err(SaleError::Invalid(crate::domain::FieldError::new(
                field,
                "stock shards need Redis Cluster (a redis+cluster:// SECKILL_REDIS_URL); on one Redis node every shard shares one core, so leave shards at 1",
            )));
        }
        let version = &self.settings.script_version;
        if !crate::domain::script_version::has_compact_ledger(version) {
            return Err(SaleError::Invalid(crate::domain::FieldError::new(
                field,
                format!(
                    "stock shards need script v5 or later; new sales here are pinned to {version}"
                ),
            )));
        }
        Ok(())
    }

    /// A sale with live figures.
    ///
    /// # Errors
    /// No such sale, or MySQL failed.
    pub async fn view(&self, id: u64) -> Result<SaleView, SaleError> {
        let record = sales::get_sale(&self.db, id)
            .await?
            .ok_or(SaleError::NotFound)?;
        self.view_of(record).await
    }

    async fn view_of(&self, record: SaleRecord) -> Result<SaleView, SaleError> {
        let mut items = Vec::with_capacity(record.items.len());
        for item in record.items {
            let snapshot = match self
                .stock
                .snapshot(crate::stock::ItemRef::of(&record.sale, &item))
                .await
            {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(item_id = item.id, error.message = %e, "redis figures unavailable for the admin view");
                    None
                }
            };
            let totals = orders::item_totals(&self.db, item.id).await?;
            items.push(ItemView::new(item, snapshot, totals));
        }
        Ok(SaleView {
            phase: Phase::of(record.sale.starts_at, record.sale.ends_at, Utc::now()),
            sale: record.sale,
            items,
        })
    }

    /// One page of sales, newest first, and the total.
    ///
    /// # Errors
    /// MySQL failed.
    pub async fn list(&self, limit: u32, offset: u64) -> Result<(Vec<SaleListed>, u64), SaleError> {
        let (rows, total) = sales::list_sales(&self.db, limit, offset).await?;
        let ids: Vec<u64> = rows.iter().map(|s| s.id).collect();
        let counts = sales::item_counts(&self.db, &ids).await?;
        let listed = rows
            .into_iter()
            .map(|sale| SaleListed {
                item_count: counts.get(&sale.id).copied().unwrap_or(0),
                phase: view::Phase::of(sale.starts_at, sale.ends_at, Utc::now()),
                sale,
            })
            .collect();
        Ok((listed, total))
    }

    async fn prewarm_lock(&self, id: u64) -> Result<LockGuard, SaleError> {
        self.lock
            .acquire(
                &format!("prewarm:s{id}"),
                PREWARM_LOCK_TTL,
                PREWARM_LOCK_WAIT,
            )
            .await
            .map_err(crate::stock::StockError::from)?
            .ok_or_else(|| {
                SaleError::refused(
                    Refusal::PrewarmInProgress,
                    "another instance is warming this sale",
                )
            })
    }

    /// Releases the prewarm lock; a lock left behind expires by itself.
    async fn release_prewarm_lock(&self, id: u64, guard: &LockGuard) {
        if let Err(e) = self.lock.release(guard).await {
            tracing::warn!(sale_id = id, error.message = %e, "prewarm lock not released; it expires by itself");
        }
    }
}
