//! A flash sale as an operator describes it, validated before anything is written: the limits,
//! the validated sale and patch, and the window rule live here; the request bodies as sent in
//! `request`, the rules that turn them into these types in `parse`.

mod admission;
mod parse;
mod request;

use chrono::{DateTime, Utc};

use super::FieldError;

pub use admission::{Admission, AdmissionMode, AdmissionRequest};
pub use request::{CreateItemRequest, CreateSaleRequest, PatchItemRequest, PatchSaleRequest};

/// Most items one sale may carry; bounds request size and prewarm time.
pub(crate) const MAX_ITEMS: usize = 100;
/// Most units of one item (the schema's INT UNSIGNED holds more; this is a sanity bound).
pub(crate) const MAX_STOCK: i64 = 1_000_000_000;
/// Highest price in cents (ten billion currency units).
pub(crate) const MAX_PRICE_CENTS: i64 = 1_000_000_000_000;
/// Highest per-user limit.
pub(crate) const MAX_PER_USER_LIMIT: i64 = 10_000;
/// Longest sale name and item title.
pub(crate) const MAX_TEXT_LEN: usize = 200;
/// Longest SKU.
pub(crate) const MAX_SKU_LEN: usize = 64;
/// Seconds a buyer has to pay when the item does not say.
pub(crate) const DEFAULT_PAYMENT_WINDOW_SECS: i64 = 900;
/// Shortest payment window (the expiry job's lateness alone is a few seconds).
pub(crate) const MIN_PAYMENT_WINDOW_SECS: i64 = 5;
/// Longest payment window (a week).
pub(crate) const MAX_PAYMENT_WINDOW_SECS: i64 = 7 * 86_400;

/// A validated new sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSale {
    /// Display name, trimmed.
    pub name: String,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end, after the start and in the future.
    pub ends_at: DateTime<Utc>,
    /// One or more items with unique SKUs.
    pub items: Vec<NewItem>,
    /// Who may buy when: open, or through the waiting room.
    pub admission: Admission,
}

/// A validated new item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// Unique within the sale.
    pub sku: String,
    /// Display title.
    pub title: String,
    /// Cents per unit.
    pub price_cents: u64,
    /// Units on sale, 1..=10^9.
    pub stock: u32,
    /// Units one user may hold, >= 1.
    pub per_user_limit: u32,
    /// Seconds a buyer has to pay.
    pub payment_window_secs: u32,
    /// Stock shards, 1..=[`MAX_SHARDS`].
    pub shards: u16,
}

/// Most stock shards an item may have.
pub const MAX_SHARDS: i64 = 16;

/// A validated change to a sale (checked against the stored sale by the admin service).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalePatch {
    /// New name.
    pub name: Option<String>,
    /// New start.
    pub starts_at: Option<DateTime<Utc>>,
    /// New end.
    pub ends_at: Option<DateTime<Utc>>,
    /// Item changes.
    pub items: Vec<ItemPatch>,
    /// A new admission policy (checked against the start by the admin service).
    pub admission: Option<Admission>,
}

/// A validated change to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPatch {
    /// Which item.
    pub id: u64,
    /// New title.
    pub title: Option<String>,
    /// New price.
    pub price_cents: Option<u64>,
    /// New stock.
    pub stock: Option<u32>,
    /// New limit.
    pub per_user_limit: Option<u32>,
    /// New payment window.
    pub payment_window_secs: Option<u32>,
}

/// Earliest start accepted, before now: a sale may be created already running, not as history.
pub(crate) const MAX_START_IN_PAST_SECS: i64 = 86_400;
/// Latest end accepted, after now.
pub(crate) const MAX_END_IN_FUTURE_SECS: i64 = 366 * 86_400;

/// Checks a window: the end after the start and in the future, the start at most a day ago,
/// the end at most a year ahead (MySQL and Redis hold these times; dates centuries away are
/// typing mistakes, not sales).
///
/// # Errors
/// The window is empty, already over, or out of those bounds.
pub(crate) fn check_window(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), FieldError> {
    if starts_at < now - chrono::Duration::seconds(MAX_START_IN_PAST_SECS) {
        return Err(FieldError::new(
            "starts_at",
            "must be at most a day before now",
        ));
    }
    if ends_at <= starts_at {
        return Err(FieldError::new("ends_at", "must be after starts_at"));
    }
    if ends_at <= now {
        return Err(FieldError::new("ends_at", "must be in the future"));
    }
    if ends_at > now + chrono::Duration::seconds(MAX_END_IN_FUTURE_SECS) {
        return Err(FieldError::new(
            "ends_at",
            "must be at most a year from now",
        ));
    }
    Ok(())
}

impl SalePatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.starts_at.is_none()
            && self.ends_at.is_none()
            && self.items.is_empty()
            && self.admission.is_none()
    }
}

#[cfg(test)]
mod tests;
