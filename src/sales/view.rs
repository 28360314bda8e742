//! What the admin API shows of a sale: the MySQL record joined with live Redis figures.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::stock::ItemSnapshot;
use crate::stores::mysql::{
    orders::ItemTotals,
    sales::{ItemRow, SaleRow},
};

/// Where a sale stands in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the window.
    Upcoming,
    /// Inside the window.
    Active,
    /// After the window.
    Ended,
}

impl Phase {
    /// The phase of a window at `now`.
    pub fn of(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if now < starts_at {
            Phase::Upcoming
        } else if now < ends_at {
            Phase::Active
        } else {
            Phase::Ended
        }
    }
}

/// A sale as the admin API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SaleView {
    /// The stored sale.
    #[serde(flatten)]
    pub sale: SaleRow,
    /// Computed from the window.
    pub phase: Phase,
    /// Items with live figures.
    pub items: Vec<ItemView>,
}

/// An item with its live figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    /// The stored item (`stock` is the MySQL-side remaining units).
    #[serde(flatten)]
    pub item: ItemRow,
    /// Units remaining in Redis; `null` when not warmed (or Redis is unreachable).
    pub redis_remaining: Option<i64>,
    /// Units reserved in Redis (`initial - remaining`).
    pub reserved_units: Option<i64>,
    /// Reservations in the ledger.
    pub reservations: Option<u64>,
    /// Reservations not yet acknowledged by Kafka.
    pub undelivered: Option<u64>,
    /// Orders and units persisted in MySQL.
    #[serde(flatten)]
    pub mysql: ItemTotals,
}

impl ItemView {
    /// Joins an item with its Redis snapshot (if Redis answered) and MySQL totals.
    pub fn new(item: ItemRow, snapshot: Option<ItemSnapshot>, mysql: ItemTotals) -> Self {
        let (remaining, initial, reservations, undelivered) = match snapshot {
            Some(s) => (
                s.remaining,
                s.initial,
                Some(s.reservations),
                Some(s.undelivered),
            ),
            None => (None, None, None, None),
        };
        Self {
            item,
            redis_remaining: remaining,
            reserved_units: initial.zip(remaining).map(|(i, r)| i - r),
            reservations,
            undelivered,
            mysql,
        }
    }
}
