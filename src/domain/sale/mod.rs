//! A flash sale as an operator describes it, validated before anything is written.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::FieldError;

/// Most items one sale may carry; bounds request size and prewarm time.
pub const MAX_ITEMS: usize = 100;
/// Most units of one item (the schema's INT UNSIGNED holds more; this is a sanity bound).
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Highest price in cents (ten billion currency units).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000_000;
/// Highest per-user limit.
pub const MAX_PER_USER_LIMIT: i64 = 10_000;
/// Longest sale name and item title.
pub const MAX_TEXT_LEN: usize = 200;
/// Longest SKU.
pub const MAX_SKU_LEN: usize = 64;
/// Seconds a buyer has to pay when the item does not say.
pub const DEFAULT_PAYMENT_WINDOW_SECS: i64 = 900;
/// Shortest payment window (the expiry job's lateness alone is a few seconds).
pub const MIN_PAYMENT_WINDOW_SECS: i64 = 5;
/// Longest payment window (a week).
pub const MAX_PAYMENT_WINDOW_SECS: i64 = 7 * 86_400;

/// `POST /admin/v1/sales` body, as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSaleRequest {
    /// Display name (no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Singles Day"
    )]
    pub name: String,
    /// RFC 3339 start, at most a day before now.
    #[schema(format = DateTime, example = "2026-11-11T00:00:00Z")]
    pub starts_at: String,
    /// RFC 3339 end: after the start, in the future, at most a year from now.
    #[schema(format = DateTime, example = "2026-11-11T01:00:00Z")]
    pub ends_at: String,
    /// The items on sale (SKUs unique within the sale).
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<CreateItemRequest>,
}

/// One item of a [`CreateSaleRequest`].
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItemRequest {
    /// Stock-keeping unit, unique within the sale: letters, digits, `-`, `_`, `.`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$",
        example = "phone"
    )]
    pub sku: String,
    /// Display title (no control characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Phone"
    )]
    pub title: String,
    /// Price per unit in cents.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub price_cents: i64,
    /// Units on sale.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub stock: i64,
    /// Most units one user may buy.
    #[schema(minimum = 1, maximum = 10_000)]
    pub per_user_limit: i64,
    /// Seconds a buyer has to pay (default 900).
    #[serde(default)]
    #[schema(minimum = 5, maximum = 604_800)]
    pub payment_window_secs: Option<i64>,
}

/// `PATCH /admin/v1/sales/{id}` body, as sent: the version read and at least one change.
/// Absent fields stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSaleRequest {
    /// The version the client read (or send it as `If-Match` instead).
    #[schema(
        required = true,
        nullable = false,
        minimum = 1,
        maximum = 4_294_967_295_i64
    )]
    pub version: Option<i64>,
    /// New name.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// New RFC 3339 start.
    #[schema(nullable = false, format = DateTime)]
    pub starts_at: Option<String>,
    /// New RFC 3339 end.
    #[schema(nullable = false, format = DateTime)]
    pub ends_at: Option<String>,
    /// Item changes, by item id (each item of this sale at most once).
    #[schema(nullable = false, min_items = 1, max_items = 100)]
    pub items: Option<Vec<PatchItemRequest>>,
}

/// One item change of a [`PatchSaleRequest`].
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchItemRequest {
    /// Which item.
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    pub id: u64,
    /// New title.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: Option<String>,
    /// New price.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub price_cents: Option<i64>,
    /// New stock (refused once the sale is warmed).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
    /// New per-user limit.
    #[schema(minimum = 1, maximum = 10_000)]
    pub per_user_limit: Option<i64>,
    /// New payment window.
    #[schema(minimum = 5, maximum = 604_800)]
    pub payment_window_secs: Option<i64>,
}

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
}

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

fn text(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

fn time(field: &str, raw: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            FieldError::new(
                field,
                format!("'{raw}' is not an RFC 3339 time such as 2026-11-23T20:00:00Z ({e})"),
            )
        })
}

fn ranged(field: &str, v: i64, min: i64, max: i64) -> Result<i64, FieldError> {
    if v < min || v > max {
        return Err(FieldError::new(
            field,
            format!("must be between {min} and {max}, got {v}"),
        ));
    }
    Ok(v)
}

fn window(field: &str, secs: i64) -> Result<u32, FieldError> {
    ranged(
        field,
        secs,
        MIN_PAYMENT_WINDOW_SECS,
        MAX_PAYMENT_WINDOW_SECS,
    )
    .map(|v| v as u32)
}

fn sku(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_SKU_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_SKU_LEN} characters"),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(s.to_string())
}

/// Earliest start accepted, before now: a sale may be created already running, not as history.
pub const MAX_START_IN_PAST_SECS: i64 = 86_400;
/// Latest end accepted, after now.
pub const MAX_END_IN_FUTURE_SECS: i64 = 366 * 86_400;

/// Checks a window: the end after the start and in the future, the start at most a day ago,
/// the end at most a year ahead (MySQL and Redis hold these times; dates centuries away are
/// typing mistakes, not sales).
///
/// # Errors
/// The window is empty, already over, or out of those bounds.
pub fn check_window(
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

impl NewSale {
    /// Validates a create request at time `now`.
    ///
    /// # Errors
    /// The first rule the request breaks, naming its field.
    pub fn parse(req: CreateSaleRequest, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let name = text("name", &req.name, MAX_TEXT_LEN)?;
        let starts_at = time("starts_at", &req.starts_at)?;
        let ends_at = time("ends_at", &req.ends_at)?;
        check_window(starts_at, ends_at, now)?;
        if req.items.is_empty() {
            return Err(FieldError::new("items", "a sale needs at least one item"));
        }
        if req.items.len() > MAX_ITEMS {
            return Err(FieldError::new(
                "items",
                format!("a sale may have at most {MAX_ITEMS} items"),
            ));
        }
        let mut seen = HashSet::new();
        let mut items = Vec::with_capacity(req.items.len());
        for (i, item) in req.items.into_iter().enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            let sku = sku(&f("sku"), &item.sku)?;
            if !seen.insert(sku.clone()) {
                return Err(FieldError::new(
                    f("sku"),
                    format!("sku '{sku}' appears more than once"),
                ));
            }
            items.push(NewItem {
                sku,
                title: text(&f("title"), &item.title, MAX_TEXT_LEN)?,
                price_cents: ranged(&f("price_cents"), item.price_cents, 0, MAX_PRICE_CENTS)?
                    as u64,
                stock: ranged(&f("stock"), item.stock, 1, MAX_STOCK)? as u32,
                per_user_limit: ranged(
                    &f("per_user_limit"),
                    item.per_user_limit,
                    1,
                    MAX_PER_USER_LIMIT,
                )? as u32,
                payment_window_secs: window(
                    &f("payment_window_secs"),
                    item.payment_window_secs
                        .unwrap_or(DEFAULT_PAYMENT_WINDOW_SECS),
                )?,
            });
        }
        Ok(Self {
            name,
            starts_at,
            ends_at,
            items,
        })
    }
}

impl SalePatch {
    /// Validates the shape of a patch (relations with the stored sale are checked later).
    ///
    /// # Errors
    /// The first rule the request breaks, naming its field.
    pub fn parse(req: PatchSaleRequest) -> Result<Self, FieldError> {
        let name = req
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_TEXT_LEN))
            .transpose()?;
        let starts_at = req
            .starts_at
            .as_deref()
            .map(|t| time("starts_at", t))
            .transpose()?;
        let ends_at = req
            .ends_at
            .as_deref()
            .map(|t| time("ends_at", t))
            .transpose()?;
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        for (i, item) in req.items.unwrap_or_default().into_iter().enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            if !seen.insert(item.id) {
                return Err(FieldError::new(f("id"), "item appears more than once"));
            }
            items.push(ItemPatch {
                id: item.id,
                title: item
                    .title
                    .as_deref()
                    .map(|t| text(&f("title"), t, MAX_TEXT_LEN))
                    .transpose()?,
                price_cents: item
                    .price_cents
                    .map(|p| ranged(&f("price_cents"), p, 0, MAX_PRICE_CENTS).map(|v| v as u64))
                    .transpose()?,
                stock: item
                    .stock
                    .map(|s| ranged(&f("stock"), s, 1, MAX_STOCK).map(|v| v as u32))
                    .transpose()?,
                per_user_limit: item
                    .per_user_limit
                    .map(|l| {
                        ranged(&f("per_user_limit"), l, 1, MAX_PER_USER_LIMIT).map(|v| v as u32)
                    })
                    .transpose()?,
                payment_window_secs: item
                    .payment_window_secs
                    .map(|w| window(&f("payment_window_secs"), w))
                    .transpose()?,
            });
        }
        Ok(Self {
            name,
            starts_at,
            ends_at,
            items,
        })
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.starts_at.is_none()
            && self.ends_at.is_none()
            && self.items.is_empty()
    }
}

#[cfg(test)]
mod tests;
