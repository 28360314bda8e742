//! The public sale page, `GET /api/v1/sales/{id}`: the hottest read of the night, served from
//! memory, then Redis, and only rarely from MySQL.
//!
//! - Levels: the rendered page (remaining stock included) lives ~100 ms in process; the sale's
//!   detail lives in process (seconds) and in Redis (a minute), filled cache-aside from MySQL.
//! - Penetration: ids that do not exist are stopped by a Bloom filter shared in Redis, and by
//!   short-lived negative entries, so MySQL sees them only at the filter's false-positive rate.
//! - Breakdown: concurrent misses of one key in a process wait for one fill (single flight);
//!   across instances a short Redis mutex lets one instance query MySQL while others wait for
//!   its result in Redis. Entries read after 80% of their life are refreshed in the background.
//! - Avalanche: every lifetime is jittered, and none outlives the sale's end plus grace.
//! - Change: an admin update commits MySQL, deletes the Redis entry, publishes the id on a
//!   Redis pub/sub channel every instance listens to (dropping its local copies), and deletes
//!   again half a second later to close the race with a reader that loaded the old row.

pub mod bloom;
pub mod ttl;

mod detail;
mod render;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use moka::future::Cache;
use redis::AsyncCommands;
use sqlx::MySqlPool;

use crate::{
    config::Settings,
    observe::metrics::Metrics,
    stock::StockService,
    stores::redis::{RedisPool, keys::Keys, lock::RedisLock},
};

use bloom::SaleBloom;
use detail::{Local, LocalExpiry};
use render::PageSlot;

pub use detail::{ItemDetail, SaleDetail};
pub use render::{ItemOut, PAGE_TTL, PageOut};

/// How long a sale's detail lives in this process before it is read again (before jitter): the
/// staleness an operator's change can have on one instance, when an invalidation was missed.
const LOCAL_TTL: Duration = Duration::from_secs(2);
/// How long an unknown sale id is remembered as missing, so a flood of made-up ids costs one
/// read each per this many seconds.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Delay of the second delete after a change.
pub(crate) const SECOND_DELETE_AFTER: Duration = Duration::from_millis(500);

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No such sale.
    #[error("sale not found")]
    NotFound,
    /// A store failed.
    #[error("{0}")]
    Store(String),
}

/// The sale page service.
#[derive(Clone)]
pub struct SalePages {
    db: MySqlPool,
    redis: RedisPool,
    keys: Keys,
    stock: StockService,
    lock: RedisLock,
    bloom: SaleBloom,
    metrics: Arc<Metrics>,
    local_ttl: Duration,
    redis_ttl: Duration,
    negative_ttl: Duration,
    grace: Duration,
    details: Cache<u64, Local>,
    pages: Arc<RwLock<HashMap<u64, Arc<PageSlot>>>>,
    page_hits: prometheus::IntCounter,
}

impl SalePages {
    /// The service over these stores.
    pub fn new(
        db: MySqlPool,
        stock: StockService,
        lock: RedisLock,
        settings: &Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let redis = stock.redis().clone();
        let keys = stock.keys().clone();
        Self {
            bloom: SaleBloom::new(redis.clone(), keys.clone()),
            db,
            redis,
            keys,
            stock,
            lock,
            metrics: metrics.clone(),
            local_ttl: LOCAL_TTL,
            redis_ttl: Duration::from_secs(settings.cache.redis_ttl_secs),
            negative_ttl: NEGATIVE_TTL,
            grace: Duration::from_secs(settings.sale.grace_secs),
            details: Cache::builder()
                .max_capacity(100_000)
                .expire_after(LocalExpiry)
                .build(),
            pages: Arc::new(RwLock::new(HashMap::new())),
            page_hits: metrics.cache.hits.with_label_values(&["page"]),
        }
    }

    /// The shared Bloom filter.
    pub fn bloom(&self) -> &SaleBloom {
        &self.bloom
    }

    /// Rebuilds the Bloom filter from MySQL (start-up). Sales created while it is rebuilt are
    /// added again afterwards, so none is ever missing from the live filter.
    ///
    /// # Errors
    /// MySQL or Redis failed.
    pub(crate) async fn rebuild_bloom(&self) -> anyhow::Result<usize> {
        let ids: Vec<u64> = sqlx::query_scalar("SELECT id FROM sales ORDER BY id")
            .fetch_all(&self.db)
            .await?;
        self.bloom.rebuild(&ids).await?;
        let last = ids.last().copied().unwrap_or(0);
        let newer: Vec<u64> = sqlx::query_scalar("SELECT id FROM sales WHERE id > ?")
            .bind(last)
            .fetch_all(&self.db)
            .await?;
        for id in &newer {
            self.bloom.add(*id).await?;
        }
        Ok(ids.len() + newer.len())
    }

    /// Drops this instance's copies of sale `id` (on an invalidation message).
    pub async fn forget_locally(&self, id: u64) {
        self.details.invalidate(&id).await;
        self.drop_page(id);
    }

    /// After a change committed in MySQL: delete the Redis copy, tell every instance, and
    /// delete once more after [`SECOND_DELETE_AFTER`].
    pub(crate) async fn invalidate(&self, id: u64) {
        if let Err(e) = self.bloom.add(id).await {
            tracing::warn!(sale_id = id, error.message = %e, "adding a sale to the Bloom filter failed");
        }
        self.delete_and_announce(id).await;
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_DELETE_AFTER).await;
            this.delete_and_announce(id).await;
        });
    }

    async fn delete_and_announce(&self, id: u64) {
        let mut conn = self.redis.get();
        let deleted: redis::RedisResult<()> = async {
            let _: i64 = conn.del(self.keys.sale_detail(id)).await?;
            let _: i64 = conn.del(self.keys.sale_missing(id)).await?;
            let _: i64 = conn
                .publish(self.keys.sale_invalidations(), id.to_string())
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = deleted {
            tracing::warn!(sale_id = id, error.message = %e, "invalidating a cached sale failed; it expires by itself");
        }
        self.forget_locally(id).await;
    }
}

impl crate::sales::SaleChangeListener for SalePages {
    fn sale_changed(&self, sale_id: u64) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.invalidate(sale_id))
    }
}
