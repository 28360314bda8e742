//! The sale's detail through its levels: process memory, then Redis, then (one filler at a time
//! across instances) MySQL, each entry refreshed ahead of its expiry.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use moka::Expiry;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::stores::mysql::sales;

use super::{PageError, SalePages, ttl};

/// How long a second instance waits for another's fill before querying MySQL itself.
const FILL_WAIT: Duration = Duration::from_secs(1);
/// How long the cross-instance fill mutex lives if its holder dies.
const FILL_LOCK_TTL: Duration = Duration::from_secs(3);
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
    /// The sale's uid as its Redis keys carry it (script v6 on; copies cached before read as
    /// none, which is right for the sales they describe). Not shown on the page.
    #[serde(default)]
    pub key_uid: Option<u128>,
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
    /// Stock shards (copies cached before shards existed read as 1).
    #[serde(default = "one_shard")]
    pub shards: u16,
}

fn one_shard() -> u16 {
    1
}

/// The Redis copy: the detail and when readers should refresh it.
#[derive(Serialize, Deserialize)]
struct Envelope {
    detail: SaleDetail,
    refresh_at_ms: i64,
}

#[derive(Clone)]
pub(super) enum Local {
    Found(Arc<SaleDetail>, Duration),
    Missing(Duration),
}

pub(super) struct LocalExpiry;

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

fn unit_random() -> f64 {
    rand::random_range(0.0..1.0)
}

impl SalePages {
    /// The sale's detail through the levels; `None` when it does not exist.
    ///
    /// # Errors
    /// A store failed.
    pub async fn detail(&self, id: u64) -> Result<Option<Arc<SaleDetail>>, PageError> {
        if let Some(local) = self.details.get(&id).await {
            self.metrics.cache.hits.with_label_values(&["local"]).inc();
            return Ok(found(local));
        }
        self.metrics
            .cache
            .misses
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
            self.metrics.cache.single_flight_waits.inc();
        }
        Ok(found(local))
    }

    /// Redis, then (one filler at a time) MySQL.
    async fn load(&self, id: u64) -> Result<Local, PageError> {
        let store = |e: redis::RedisError| PageError::Store(e.to_string());
        if !self.bloom.may_contain(id).await.map_err(store)? {
            self.metrics
                .cache
                .rejections
                .with_label_values(&["bloom"])
                .inc();
            return Ok(Local::Missing(self.negative_ttl));
        }
        if let Some(hit) = self.read_redis(id).await.map_err(store)? {
            return Ok(hit);
        }
        self.metrics
            .cache
            .misses
            .with_label_values(&["redis"])
            .inc();
        let name = self.keys.page_fill_lock(id);
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
                    self.metrics.cache.single_flight_waits.inc();
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
                .cache
                .rejections
                .with_label_values(&["negative"])
                .inc();
            return Ok(Some(Local::Missing(self.negative_ttl)));
        }
        let Some(bytes) = detail else { return Ok(None) };
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) else {
            return Ok(None); // unreadable (older format): refill
        };
        self.metrics.cache.hits.with_label_values(&["redis"]).inc();
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
            .try_acquire(&self.keys.page_fill_lock(id), FILL_LOCK_TTL)
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
        self.metrics.cache.hits.with_label_values(&["mysql"]).inc();
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
            key_uid: crate::stock::key_uid(&record.sale.script_version, &record.sale.uid),
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
                    shards: i.shards,
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
}

fn found(local: Local) -> Option<Arc<SaleDetail>> {
    match local {
        Local::Found(d, _) => Some(d),
        Local::Missing(_) => None,
    }
}
