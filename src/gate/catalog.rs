//! In-process cache of what the buy path needs about an item (sale, window, limit, price,
//! script version). Loaded from MySQL on a miss, one query per item however many requests wait
//! (moka coalesces concurrent loads of one key), and kept only briefly, so an admin change
//! reaches every instance within the TTL. The Lua script re-checks the window authoritatively.
//!
//! Hits are served from a plain map under a read lock: moka records every read for its
//! eviction policy, which showed up on the sold-out path, where the whole answer costs a few
//! microseconds. The map holds only items that exist (unknown ids stay in moka, which bounds
//! them), each with the time it was loaded from MySQL, so the TTL counts from the load, not
//! from when the map took the entry.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use moka::future::Cache;
use sqlx::MySqlPool;

use crate::store::sales::{self, ItemMeta};

/// How long an item's metadata is trusted in process.
pub const CATALOG_TTL: Duration = Duration::from_secs(1);
/// Items kept at most (many more than any sale has).
const CATALOG_CAPACITY: u64 = 100_000;
/// Entries in the hit map before expired ones are swept out.
const HOT_SWEEP_AT: usize = 10_000;

/// One load from MySQL.
#[derive(Clone)]
struct Loaded {
    meta: Option<Arc<ItemMeta>>,
    at: Instant,
}

/// The cache.
#[derive(Clone)]
pub struct Catalog {
    db: MySqlPool,
    hot: Arc<RwLock<HashMap<u64, Loaded>>>,
    items: Cache<u64, Loaded>,
}

impl Catalog {
    /// A cache in front of `db`.
    pub fn new(db: MySqlPool) -> Self {
        Self {
            db,
            hot: Arc::default(),
            items: Cache::builder()
                .max_capacity(CATALOG_CAPACITY)
                .time_to_live(CATALOG_TTL)
                .build(),
        }
    }

    /// The item's metadata, or `None` if no such item exists.
    ///
    /// # Errors
    /// MySQL failed on a miss.
    pub async fn item(&self, item_id: u64) -> Result<Option<Arc<ItemMeta>>, Arc<sqlx::Error>> {
        if let Some(meta) = self.hot_get(item_id) {
            return Ok(Some(meta));
        }
        let db = &self.db;
        // Boxed: moka's loading future is most of this future's size, and every buy request
        // carries this future while only misses run it.
        let loaded = Box::pin(self.items.try_get_with(item_id, async move {
            let meta = sales::item_meta(db, item_id).await?;
            Ok::<_, sqlx::Error>(Loaded {
                meta: meta.map(Arc::new),
                at: Instant::now(),
            })
        }))
        .await?;
        if loaded.meta.is_some() {
            self.hot_put(item_id, loaded.clone());
        }
        Ok(loaded.meta)
    }

    fn hot_get(&self, item_id: u64) -> Option<Arc<ItemMeta>> {
        let hot = self.hot.read().unwrap_or_else(|e| e.into_inner());
        let loaded = hot.get(&item_id)?;
        (loaded.at.elapsed() < CATALOG_TTL)
            .then(|| loaded.meta.clone())
            .flatten()
    }

    fn hot_put(&self, item_id: u64, loaded: Loaded) {
        let mut hot = self.hot.write().unwrap_or_else(|e| e.into_inner());
        if hot.len() >= HOT_SWEEP_AT {
            hot.retain(|_, l| l.at.elapsed() < CATALOG_TTL);
        }
        hot.insert(item_id, loaded);
    }

    /// Drops an item so the next request reloads it (after an admin change on this instance).
    pub async fn forget(&self, item_id: u64) {
        self.hot
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&item_id);
        self.items.invalidate(&item_id).await;
    }
}
