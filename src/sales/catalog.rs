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
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::future::Cache;
use sqlx::MySqlPool;

use crate::stores::mysql::sales::{self, ItemMeta};

/// How long an item's metadata is trusted in process.
pub(crate) const CATALOG_TTL: Duration = Duration::from_secs(1);
/// Items kept at most (many more than any sale has).
const CATALOG_CAPACITY: u64 = 100_000;
/// Entries in the hit map before expired ones are first swept out; after a sweep the next
/// comes at twice the entries left, so sweeping stays amortised however many items are live.
const HOT_SWEEP_AT: usize = 10_000;

/// One load from MySQL.
#[derive(Clone)]
struct Loaded {
    meta: Option<Arc<ItemMeta>>,
    at: Instant,
}

/// The hit map and when to sweep it next.
struct Hot {
    items: HashMap<u64, Loaded>,
    sweep_at: usize,
}

/// How often the highest item id is read again when a request names a higher one.
const HIGHEST_REFRESH: Duration = Duration::from_millis(250);

/// The highest item id MySQL holds, and when it was read. Item ids come from AUTO_INCREMENT
/// and items are never deleted, so an id above it cannot exist: a request naming one is
/// answered from memory. A flood of random ids (before any authentication) costs MySQL one
/// `MAX(id)` per [`HIGHEST_REFRESH`], however many requests it sends.
struct Highest {
    id: AtomicU64,
    read_at: tokio::sync::Mutex<Option<Instant>>,
}

/// The cache.
#[derive(Clone)]
pub struct Catalog {
    db: MySqlPool,
    highest: Arc<Highest>,
    hot: Arc<RwLock<Hot>>,
    /// Bumped by every `forget`: a load that began before it must not refill the hit map.
    generation: Arc<AtomicU64>,
    items: Cache<u64, Loaded>,
}

impl Catalog {
    /// A cache in front of `db`.
    pub fn new(db: MySqlPool) -> Self {
        Self {
            db,
            highest: Arc::new(Highest {
                id: AtomicU64::new(0),
                read_at: tokio::sync::Mutex::new(None),
            }),
            hot: Arc::new(RwLock::new(Hot {
                items: HashMap::new(),
                sweep_at: HOT_SWEEP_AT,
            })),
            generation: Arc::default(),
            items: Cache::builder()
                .max_capacity(CATALOG_CAPACITY)
                .time_to_live(CATALOG_TTL)
                .build(),
        }
    }

    /// The item's metadata, or `None` if no such item exists; `now` is the caller's clock
    /// read (the buy path reads it once for this and the sold-out flag).
    ///
    /// # Errors
    /// MySQL failed on a miss.
    pub(crate) async fn item_at(
        &self,
        item_id: u64,
        now: Instant,
    ) -> Result<Option<Arc<ItemMeta>>, Arc<sqlx::Error>> {
        if let Some(meta) = self.hot_get(item_id, now) {
            return Ok(Some(meta));
        }
        if !self.may_exist(item_id).await? {
            return Ok(None);
        }
        let generation = self.generation.load(Ordering::Acquire);
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
            self.hot_put(item_id, loaded.clone(), generation);
        }
        Ok(loaded.meta)
    }

    /// False when `item_id` is above the highest id MySQL holds (read again at most every
    /// [`HIGHEST_REFRESH`], one reader at a time).
    async fn may_exist(&self, item_id: u64) -> Result<bool, Arc<sqlx::Error>> {
        if item_id == 0 {
            return Ok(false);
        }
        if item_id <= self.highest.id.load(Ordering::Acquire) {
            return Ok(true);
        }
        let mut read_at = self.highest.read_at.lock().await;
        if read_at.is_none_or(|t| t.elapsed() >= HIGHEST_REFRESH) {
            let highest = sales::highest_item_id(&self.db).await.map_err(Arc::new)?;
            self.highest.id.fetch_max(highest, Ordering::AcqRel);
            *read_at = Some(Instant::now());
        }
        Ok(item_id <= self.highest.id.load(Ordering::Acquire))
    }

    fn hot_get(&self, item_id: u64, now: Instant) -> Option<Arc<ItemMeta>> {
        let hot = self.hot.read().unwrap_or_else(|e| e.into_inner());
        let loaded = hot.items.get(&item_id)?;
        (now.saturating_duration_since(loaded.at) < CATALOG_TTL)
            .then(|| loaded.meta.clone())
            .flatten()
    }

    fn hot_put(&self, item_id: u64, loaded: Loaded, generation: u64) {
        let mut hot = self.hot.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock `forget` also takes: a forget either came before (seen
        // here) or comes after (and removes this entry).
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if hot.items.len() >= hot.sweep_at {
            hot.items.retain(|_, l| l.at.elapsed() < CATALOG_TTL);
            hot.sweep_at = (hot.items.len() * 2).max(HOT_SWEEP_AT);
        }
        hot.items.insert(item_id, loaded);
    }

    /// Drops an item so the next request reloads it (after an admin change on this instance),
    /// and counts it as existing (an item this instance just created is buyable at once;
    /// other instances see it within [`HIGHEST_REFRESH`]).
    pub(crate) async fn forget(&self, item_id: u64) {
        self.highest.id.fetch_max(item_id, Ordering::AcqRel);
        {
            let mut hot = self.hot.write().unwrap_or_else(|e| e.into_inner());
            self.generation.fetch_add(1, Ordering::AcqRel);
            hot.items.remove(&item_id);
        }
        self.items.invalidate(&item_id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        // Never connects: these tests only touch the hit map.
        Catalog::new(MySqlPool::connect_lazy("mysql://nobody@127.0.0.1:1/none").unwrap())
    }

    fn loaded(at: Instant) -> Loaded {
        let now = chrono::Utc::now();
        Loaded {
            meta: Some(Arc::new(ItemMeta {
                item_id: 7,
                sale_id: 1,
                price_cents: 100,
                per_user_limit: 1,
                starts_at: now,
                ends_at: now,
                script_version: "v3".into(),
                sale_uid: "uid".into(),
                admission: Default::default(),
                shards: 1,
            })),
            at,
        }
    }

    #[tokio::test]
    async fn an_entry_is_trusted_for_the_ttl_counted_from_its_load() {
        let c = catalog();
        c.hot_put(7, loaded(Instant::now()), 0);
        assert!(c.hot_get(7, Instant::now()).is_some());
        c.hot_put(8, loaded(Instant::now() - CATALOG_TTL), 0);
        assert!(
            c.hot_get(8, Instant::now()).is_none(),
            "loaded a TTL ago: stale"
        );
    }

    #[tokio::test]
    async fn a_load_that_began_before_a_forget_does_not_refill_the_map() {
        let c = catalog();
        let before = c.generation.load(Ordering::Acquire);
        c.forget(7).await;
        c.hot_put(7, loaded(Instant::now()), before);
        assert!(c.hot_get(7, Instant::now()).is_none());
        let after = c.generation.load(Ordering::Acquire);
        c.hot_put(7, loaded(Instant::now()), after);
        assert!(c.hot_get(7, Instant::now()).is_some());
    }

    #[tokio::test]
    async fn sweeping_drops_stale_entries_and_moves_its_threshold() {
        let c = catalog();
        let stale = Instant::now() - CATALOG_TTL;
        for id in 0..HOT_SWEEP_AT as u64 {
            c.hot_put(id, loaded(stale), 0);
        }
        c.hot_put(u64::MAX, loaded(Instant::now()), 0);
        let hot = c.hot.read().unwrap();
        assert_eq!(hot.items.len(), 1, "the stale entries were swept");
        assert_eq!(hot.sweep_at, HOT_SWEEP_AT);
    }
}
