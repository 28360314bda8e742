//! The rows of `sales` and `sale_items` as the queries return them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::sale::Admission;

/// One `sales` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SaleRow {
    /// Sale id.
    pub id: u64,
    /// Random identity stamped on the sale's Redis state (32 hex characters).
    pub uid: String,
    /// Display name.
    pub name: String,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end.
    pub ends_at: DateTime<Utc>,
    /// `created` or `warmed`.
    pub status: String,
    /// Lua script version the sale is pinned to.
    pub script_version: String,
    /// When its stock went into Redis.
    pub warmed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who may buy when: open, or through the waiting room.
    #[sqlx(try_from = "String")]
    pub admission: Admission,
}

/// One `sale_items` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ItemRow {
    /// Item id.
    pub id: u64,
    /// Owning sale.
    pub sale_id: u64,
    /// SKU, unique within the sale.
    pub sku: String,
    /// Display title.
    pub title: String,
    /// Cents per unit.
    pub price_cents: u64,
    /// Units put on sale.
    pub initial_stock: u32,
    /// MySQL-side remaining units (decremented by the consumer).
    pub stock: u32,
    /// Units one user may hold.
    pub per_user_limit: u32,
    /// Seconds a buyer has to pay; `null` for items of sales before script v4 (their orders
    /// never expire).
    pub payment_window_secs: Option<u32>,
    /// Stock shards on Redis Cluster (1: the stock is one key).
    pub shards: u16,
    /// Row version.
    pub version: u32,
}

/// A sale with its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    /// The sale.
    pub sale: SaleRow,
    /// Its items, by id.
    pub items: Vec<ItemRow>,
}

/// What the buy path needs to know about an item, joined with its sale.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemMeta {
    /// Item id.
    pub item_id: u64,
    /// Sale id.
    pub sale_id: u64,
    /// Cents per unit.
    pub price_cents: u64,
    /// Units one user may hold.
    pub per_user_limit: u32,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end.
    pub ends_at: DateTime<Utc>,
    /// Script version of the sale.
    pub script_version: String,
    /// The sale's identity (checked against its Redis state from script v3 on).
    pub sale_uid: String,
    /// The sale's admission policy (a queued sale's buys need an admission token).
    #[sqlx(try_from = "String")]
    pub admission: Admission,
    /// Stock shards on Redis Cluster (1: the stock is one key).
    pub shards: u16,
}

/// A sale item whose Redis keys may still hold reservations (relay, order lookup).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveItem {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Stock shards on Redis Cluster (1: the stock is one key).
    pub shards: u16,
    /// Script version of the sale (v6 on, its keys carry its uid).
    pub script_version: String,
    /// The sale's identity.
    pub sale_uid: String,
}
