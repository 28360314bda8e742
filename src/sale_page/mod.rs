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
pub mod invalidation;
pub mod ttl;

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use moka::{Expiry, future::Cache};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::{
    config::Settings,
    lock::RedisLock,
    metrics::Metrics,
    redis_pool::RedisPool,
    sales::Phase,
    stock::{Keys, StockService},
    store::sales,
};

use bloom::SaleBloom;

/// How long a rendered page (with its approximate remaining stock) is reused.
pub const PAGE_TTL: Duration = Duration::from_millis(100);
/// Rendered pages kept at most; beyond this, pages not read lately are dropped.
const MAX_PAGES: usize = 10_000;
/// How long a second instance waits for another's fill before querying MySQL itself.
const FILL_WAIT: Duration = Duration::from_secs(1);
/// How long the cross-instance fill mutex lives if its holder dies.
const FILL_LOCK_TTL: Duration = Duration::from_secs(3);
/// Delay of the second delete after a change.
pub const SECOND_DELETE_AFTER: Duration = Duration::from_millis(500);
/// Share of a Redis entry's life after which readers refresh it in the background.
const REFRESH_AT: f64 = 0.8;

/// What a sale page shows that changes only when an operator edits the sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleDetail {
    /// Sale id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end.
    pub ends_at: DateTime<Utc>,
    /// Items.
    pub items: Vec<ItemDetail>,
}

/// An item on the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDetail {
    /// Item id.
    pub id: u64,
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Cents per unit.
    pub price_cents: u64,
    /// Units one user may buy.
    pub per_user_limit: u32,
    /// Units put on sale.
    pub initial_stock: u32,
}

/// The Redis copy: the detail and when readers should refresh it.
#[derive(Serialize, Deserialize)]
struct Envelope {
    detail: SaleDetail,
    refresh_at_ms: i64,
}

#[derive(Clone)]
enum Local {
    Found(Arc<SaleDetail>, Duration),
    Missing(Duration),
}

struct LocalExpiry;

impl Expiry<u64, Local> for LocalExpiry {
    fn expire_after_create(
        &self,
        _: &u64,
        value: &Local,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(match value {
            Local::Found(_, ttl) | Local::Missing(ttl) => *ttl,
        })
    }
}

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

/// A rendered page and when it was rendered. Served while fresh; once stale, the first reader
/// starts a background re-render and everyone keeps getting the stale copy meanwhile, so no
/// request ever waits for a refresh (only the very first render of a sale is waited for).
struct PageSlot {
    bytes: Bytes,
    rendered: std::time::Instant,
    refreshing: AtomicBool,
}

/// The page as served.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SalePage)]
pub struct PageOut<'a> {
    id: u64,
    name: &'a str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    phase: Phase,
    items: Vec<ItemOut<'a>>,
}

/// An item of the sale page.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SalePageItem)]
pub struct ItemOut<'a> {
    id: u64,
    sku: &'a str,
    title: &'a str,
    price_cents: u64,
    per_user_limit: u32,
    /// Approximate (refreshed at most every ~100 ms); `null` before the sale is warmed.
    remaining: Option<i64>,
    sold_out: bool,
}

fn unit_random() -> f64 {
    rand::random_range(0.0..1.0)
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
            local_ttl: Duration::from_secs(settings.cache.local_ttl_secs),
            redis_ttl: Duration::from_secs(settings.cache.redis_ttl_secs),
            negative_ttl: Duration::from_secs(settings.cache.negative_ttl_secs),
            grace: Duration::from_secs(settings.sale.grace_secs),
            details: Cache::builder()
                .max_capacity(100_000)
                .expire_after(LocalExpiry)
                .build(),
            pages: Arc::new(RwLock::new(HashMap::new())),
            page_hits: metrics.cache_hits.with_label_values(&["page"]),
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
    pub async fn rebuild_bloom(&self) -> anyhow::Result<usize> {
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

    /// The rendered page of sale `id`.
    ///
    /// # Errors
    /// Unknown sale, or a store failed on a miss.
    pub async fn page(&self, id: u64) -> Result<Bytes, PageError> {
        let slot = self
            .pages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        if let Some(slot) = slot {
            self.page_hits.inc();
            if slot.rendered.elapsed() >= PAGE_TTL
                && slot
                    .refreshing
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                let this = self.clone();
                let stale = slot.clone();
                tokio::spawn(async move {
                    match this.render(id).await {
                        Ok(bytes) => this.store_page(id, bytes),
                        Err(PageError::NotFound) => this.drop_page(id),
                        Err(e) => {
                            // Keep serving the stale copy; the next reader tries again.
                            tracing::warn!(sale_id = id, error.message = %e, "re-rendering a sale page failed");
                            stale.refreshing.store(false, Ordering::Release);
                        }
                    }
                });
            }
            return Ok(slot.bytes.clone());
        }
        self.metrics.cache_misses.with_label_values(&["page"]).inc();
        let bytes = self.render(id).await?;
        self.store_page(id, bytes.clone());
        Ok(bytes)
    }

    fn store_page(&self, id: u64, bytes: Bytes) {
        let slot = Arc::new(PageSlot {
            bytes,
            rendered: std::time::Instant::now(),
            refreshing: AtomicBool::new(false),
        });
        let mut pages = self.pages.write().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= MAX_PAGES && !pages.contains_key(&id) {
            // Bounded memory: forget pages nobody refreshed lately.
            pages.retain(|_, s| s.rendered.elapsed() < PAGE_TTL * 10);
        }
        pages.insert(id, slot);
    }

    fn drop_page(&self, id: u64) {
        self.pages
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    async fn render(&self, id: u64) -> Result<Bytes, PageError> {
        let detail = self.detail(id).await?.ok_or(PageError::NotFound)?;
        let mut items = Vec::with_capacity(detail.items.len());
        for item in &detail.items {
            let remaining = self
                .stock
                .remaining(id, item.id)
                .await
                .map_err(|e| PageError::Store(e.to_string()))?;
            items.push(ItemOut {
                id: item.id,
                sku: &item.sku,
                title: &item.title,
                price_cents: item.price_cents,
                per_user_limit: item.per_user_limit,
                remaining,
                sold_out: remaining == Some(0),
            });
        }
        let out = PageOut {
            id,
            name: &detail.name,
            starts_at: detail.starts_at,
            ends_at: detail.ends_at,
            phase: Phase::of(detail.starts_at, detail.ends_at, Utc::now()),
            items,
        };
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .map_err(|e| PageError::Store(e.to_string()))
    }

    /// The sale's detail through the levels; `None` when it does not exist.
    ///
    /// # Errors
    /// A store failed.
    pub async fn detail(&self, id: u64) -> Result<Option<Arc<SaleDetail>>, PageError> {
        if let Some(local) = self.details.get(&id).await {
            self.metrics.cache_hits.with_label_values(&["local"]).inc();
            return Ok(found(local));
        }
        self.metrics
            .cache_misses
            .with_label_values(&["local"])
            .inc();
        let filled_here = Arc::new(AtomicBool::new(false));
        let flag = filled_here.clone();
        let local = self
            .details
            .try_get_with(id, async move {
                flag.store(true, Ordering::Relaxed);
                self.load(id).await
            })
            .await
            .map_err(|e| PageError::Store(e.to_string()))?;
        if !filled_here.load(Ordering::Relaxed) {
            self.metrics.cache_single_flight_waits.inc();
        }
        Ok(found(local))
    }

    /// Redis, then (one filler at a time) MySQL.
    async fn load(&self, id: u64) -> Result<Local, PageError> {
        let store = |e: redis::RedisError| PageError::Store(e.to_string());
        if !self.bloom.may_contain(id).await.map_err(store)? {
            self.metrics
                .cache_rejections
                .with_label_values(&["bloom"])
                .inc();
            return Ok(Local::Missing(self.negative_ttl));
        }
        if let Some(hit) = self.read_redis(id).await.map_err(store)? {
            return Ok(hit);
        }
        self.metrics
            .cache_misses
            .with_label_values(&["redis"])
            .inc();
        let name = format!("sale_fill:s{id}");
        let guard = self
            .lock
            .try_acquire(&name, FILL_LOCK_TTL)
            .await
            .map_err(|e| PageError::Store(e.to_string()))?;
        if guard.is_none() {
            // Another instance is filling: wait for its result rather than querying too.
            let deadline = tokio::time::Instant::now() + FILL_WAIT;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(hit) = self.read_redis(id).await.map_err(store)? {
                    self.metrics.cache_single_flight_waits.inc();
                    return Ok(hit);
                }
            }
        }
        let result = self.fill_from_mysql(id).await;
        if let Some(g) = guard {
            let _ = self.lock.release(&g).await;
        }
        result
    }

    async fn read_redis(&self, id: u64) -> redis::RedisResult<Option<Local>> {
        let mut conn = self.redis.get();
        let (detail, missing): (Option<Vec<u8>>, bool) = redis::pipe()
            .get(self.keys.sale_detail(id))
            .exists(self.keys.sale_missing(id))
            .query_async(&mut conn)
            .await?;
        if missing {
            self.metrics
                .cache_rejections
                .with_label_values(&["negative"])
                .inc();
            return Ok(Some(Local::Missing(self.negative_ttl)));
        }
        let Some(bytes) = detail else { return Ok(None) };
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) else {
            return Ok(None); // unreadable (older format): refill
        };
        self.metrics.cache_hits.with_label_values(&["redis"]).inc();
        if Utc::now().timestamp_millis() >= envelope.refresh_at_ms {
            let this = self.clone();
            tokio::spawn(async move { this.refresh_ahead(id).await });
        }
        let ttl = ttl::capped(
            ttl::jittered(self.local_ttl, unit_random()),
            envelope.detail.ends_at,
            self.grace,
            Utc::now(),
        );
        Ok(Some(Local::Found(Arc::new(envelope.detail), ttl)))
    }

    /// Reloads a hot entry before it expires, if no other instance is already doing it.
    async fn refresh_ahead(&self, id: u64) {
        let Ok(Some(guard)) = self
            .lock
            .try_acquire(&format!("sale_fill:s{id}"), FILL_LOCK_TTL)
            .await
        else {
            return;
        };
        if let Err(e) = self.fill_from_mysql(id).await {
            tracing::warn!(sale_id = id, error.message = %e, "refreshing a sale page ahead of expiry failed");
        }
        let _ = self.lock.release(&guard).await;
    }

    async fn fill_from_mysql(&self, id: u64) -> Result<Local, PageError> {
        self.metrics.cache_hits.with_label_values(&["mysql"]).inc();
        let record = sales::get_sale(&self.db, id)
            .await
            .map_err(|e| PageError::Store(e.to_string()))?;
        let mut conn = self.redis.get();
        let Some(record) = record else {
            let _: () = conn
                .pset_ex(
                    self.keys.sale_missing(id),
                    1,
                    self.negative_ttl.as_millis() as u64,
                )
                .await
                .map_err(|e| PageError::Store(e.to_string()))?;
            return Ok(Local::Missing(self.negative_ttl));
        };
        let detail = SaleDetail {
            id,
            name: record.sale.name,
            starts_at: record.sale.starts_at,
            ends_at: record.sale.ends_at,
            items: record
                .items
                .into_iter()
                .map(|i| ItemDetail {
                    id: i.id,
                    sku: i.sku,
                    title: i.title,
                    price_cents: i.price_cents,
                    per_user_limit: i.per_user_limit,
                    initial_stock: i.initial_stock,
                })
                .collect(),
        };
        let now = Utc::now();
        let redis_ttl = ttl::capped(
            ttl::jittered(self.redis_ttl, unit_random()),
            detail.ends_at,
            self.grace,
            now,
        );
        let envelope = Envelope {
            refresh_at_ms: now.timestamp_millis()
                + (redis_ttl.as_millis() as f64 * REFRESH_AT) as i64,
            detail,
        };
        let bytes = serde_json::to_vec(&envelope).map_err(|e| PageError::Store(e.to_string()))?;
        let _: () = conn
            .pset_ex(
                self.keys.sale_detail(id),
                bytes,
                redis_ttl.as_millis().max(1) as u64,
            )
            .await
            .map_err(|e| PageError::Store(e.to_string()))?;
        let local_ttl = ttl::capped(
            ttl::jittered(self.local_ttl, unit_random()),
            envelope.detail.ends_at,
            self.grace,
            now,
        );
        Ok(Local::Found(Arc::new(envelope.detail), local_ttl))
    }

    /// Drops this instance's copies of sale `id` (on an invalidation message).
    pub async fn forget_locally(&self, id: u64) {
        self.details.invalidate(&id).await;
        self.drop_page(id);
    }

    /// After a change committed in MySQL: delete the Redis copy, tell every instance, and
    /// delete once more after [`SECOND_DELETE_AFTER`].
    pub async fn invalidate(&self, id: u64) {
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

fn found(local: Local) -> Option<Arc<SaleDetail>> {
    match local {
        Local::Found(d, _) => Some(d),
        Local::Missing(_) => None,
    }
}

impl crate::sales::SaleChangeListener for SalePages {
    fn sale_changed(&self, sale_id: u64) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.invalidate(sale_id))
    }
}
