//! The create and patch request bodies as sent, before validation (see `parse` for the rules).

use serde::Deserialize;

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
    /// Who may buy when (default, or `null`: open).
    pub admission: Option<super::AdmissionRequest>,
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
    /// Stock shards on Redis Cluster (default 1): the stock is split over this many keys on
    /// different hash tags, each buyer's home shard holding their units. Refused (422) when
    /// Redis is not a Cluster.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 16)]
    pub shards: Option<i64>,
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
    /// A new admission policy, replacing the stored one as a whole.
    #[schema(nullable = false)]
    pub admission: Option<super::AdmissionRequest>,
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
