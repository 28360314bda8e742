//! The rendered page: the JSON a buyer gets, reused for [`PAGE_TTL`] and re-rendered in the
//! background once stale, so only the very first render of a sale is waited for.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sales::Phase;

use super::{PageError, SalePages};

/// How long a rendered page (with its approximate remaining stock) is reused.
pub const PAGE_TTL: Duration = Duration::from_millis(100);
/// Rendered pages kept at most; beyond this, pages not read lately are dropped.
const MAX_PAGES: usize = 10_000;

/// A rendered page and when it was rendered. Served while fresh; once stale, the first reader
/// starts a background re-render and everyone keeps getting the stale copy meanwhile, so no
/// request ever waits for a refresh (only the very first render of a sale is waited for).
pub(super) struct PageSlot {
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

impl SalePages {
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
        self.metrics.cache.misses.with_label_values(&["page"]).inc();
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

    pub(super) fn drop_page(&self, id: u64) {
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
                .remaining(crate::stock::ItemRef {
                    sale_id: id,
                    item_id: item.id,
                    shards: item.shards,
                    uid: detail.key_uid,
                })
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
}
