//! What a buy can be refused with, or fail with. The HTTP answer of each is decided at the edge
//! (`api::error`); [`BuyError::code`] is the same machine-readable code the answer carries,
//! used here as the outcome label of `seckill_buy_outcomes_total`.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use super::{gate::limiter::Gate, identify::AuthError};
use crate::{
    domain::{FieldError, json::JsonError},
    stock::StockError,
};

/// Why a buy was not reserved.
#[derive(Debug, thiserror::Error)]
pub enum BuyError {
    /// A token bucket is empty.
    #[error("too many requests")]
    RateLimited {
        /// Which bucket.
        gate: Gate,
        /// When it has a token again.
        retry_after: Duration,
    },
    /// No such item in this sale.
    #[error("sale item not found")]
    UnknownItem,
    /// The sale has not started.
    #[error("the sale has not started")]
    NotStarted,
    /// The sale has ended.
    #[error("the sale has ended")]
    Ended,
    /// Nothing left.
    #[error("sold out")]
    SoldOut,
    /// Fewer units left than asked for.
    #[error("only {remaining} left")]
    InsufficientStock {
        /// Units left.
        remaining: i64,
    },
    /// The buyer would hold more than the per-user limit.
    #[error("you hold {bought} of at most {limit} per user")]
    LimitExceeded {
        /// Units the buyer holds.
        bought: i64,
        /// The item's per-user limit.
        limit: i64,
    },
    /// A queued sale's buy without a valid admission of this buyer.
    #[error(transparent)]
    Admission(crate::buy::waiting_room::AdmissionError),
    /// A bad quantity or body.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A body that is not JSON, or of the wrong shape.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// No, or bad, buyer credentials.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// Reserved, but not confirmed durable in time; the order may stand.
    #[error(
        "the reservation was made but could not be confirmed in time; it may stand: retry with the same Idempotency-Key, or look the order up"
    )]
    Unconfirmed {
        /// The order that may stand.
        order_id: Uuid,
    },
    /// The item's Redis state is being rebuilt from MySQL.
    #[error("the sale is recovering from a storage fault; retry shortly")]
    Recovering,
    /// The buyer's shard is short while units move to it; nothing was reserved.
    #[error("units are moving to this buyer's stock shard; retry shortly")]
    StockMoving,
    /// The item's stock is not in Redis yet (the sale is about to be warmed).
    #[error("the sale's stock is not ready yet; try again shortly")]
    NotWarmed,
    /// The item's Redis keys hold another sale's state; nothing was sold.
    #[error("the sale is unavailable; the operators have been alerted")]
    ForeignState,
    /// The deduct script refused its arguments (a bug).
    #[error("deduct script refused its arguments")]
    BadArgument,
    /// MySQL failed while the item's metadata was loaded (shared by the requests waiting for
    /// the same load).
    #[error("loading item metadata: {0}")]
    Catalog(Arc<sqlx::Error>),
    /// Redis failed.
    #[error("stock store error")]
    Stock(#[from] StockError),
}

impl BuyError {
    /// The machine-readable code of the answer, and the outcome label of the buy metric.
    pub fn code(&self) -> &'static str {
        match self {
            BuyError::RateLimited { .. } => "rate_limited",
            BuyError::UnknownItem => "not_found",
            BuyError::NotStarted => "not_started",
            BuyError::Ended => "ended",
            BuyError::SoldOut => "sold_out",
            BuyError::InsufficientStock { .. } => "insufficient_stock",
            BuyError::LimitExceeded { .. } => "limit_exceeded",
            BuyError::Admission(e) => e.code(),
            BuyError::Invalid(_) => "invalid_field",
            BuyError::Json(JsonError::Malformed(_)) => "invalid_json",
            BuyError::Json(_) => "invalid_field",
            BuyError::Unauthorized(_) => "unauthorized",
            BuyError::Unconfirmed { .. } => "unconfirmed",
            BuyError::Recovering => "recovering",
            BuyError::StockMoving => "stock_moving",
            BuyError::NotWarmed => "unavailable",
            BuyError::ForeignState => "foreign_state",
            BuyError::BadArgument => "internal",
            BuyError::Catalog(e) if crate::stores::mysql::is_unavailable(e) => "unavailable",
            BuyError::Catalog(_) => "internal",
            BuyError::Stock(_) => "stock_unavailable",
        }
    }
}
