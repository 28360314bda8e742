//! In-process cache of what the buy path needs about an item (sale, window, limit, price,
//! script version). Loaded from MySQL on a miss, one query per item however many requests wait
//! (moka coalesces concurrent loads of one key), and kept only briefly, so an admin change
//! reaches every instance within the TTL. The Lua script re-checks the window authoritatively.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use sqlx::MySqlPool;

use crate::store::sales::{self, ItemMeta};

/// How long an item's metadata is trusted in process.
pub const CATALOG_TTL: Duration = Duration::from_secs(1);
/// Items kept at most (many more than any sale has).
const CATALOG_CAPACITY: u64 = 100_000;

/// The cache.
#[derive(Clone)]
pub struct Catalog {
    db: MySqlPool,
    items: Cache<u64, Option<Arc<ItemMeta>>>,
}

impl Catalog {
    /// A cache in front of `db`.
    pub fn new(db: MySqlPool) -> Self {
        Self {
            db,
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
        let db = &self.db;
        self.items
            .try_get_with(item_id, async move {
                sales::item_meta(db, item_id).await.map(|m| m.map(Arc::new))
            })
            .await
    }

    /// Drops an item so the next request reloads it (after an admin change on this instance).
    pub async fn forget(&self, item_id: u64) {
        self.items.invalidate(&item_id).await;
    }
}
