//! The services' errors as HTTP answers: each service owns its error type, and this is the one
//! place that decides their status and code.

use super::ApiError;
use crate::{domain::FieldError, stock::StockError};

impl From<crate::domain::json::JsonError> for ApiError {
    fn from(e: crate::domain::json::JsonError) -> Self {
        match e {
            crate::domain::json::JsonError::Malformed(m) => ApiError::MalformedJson(m),
            crate::domain::json::JsonError::Field(f) => ApiError::Invalid(f),
        }
    }
}

impl From<crate::buy::BuyError> for ApiError {
    fn from(e: crate::buy::BuyError) -> Self {
        use crate::buy::BuyError as B;
        match e {
            B::RateLimited { retry_after, .. } => ApiError::RateLimited { retry_after },
            B::UnknownItem => ApiError::NotFound("sale item"),
            B::NotStarted => ApiError::NotStarted,
            B::Ended => ApiError::Ended,
            B::SoldOut => ApiError::SoldOut,
            e @ B::InsufficientStock { .. } => {
                ApiError::conflict("insufficient_stock", e.to_string())
            }
            e @ B::LimitExceeded { .. } => ApiError::conflict("limit_exceeded", e.to_string()),
            B::Admission(e) => ApiError::Forbidden {
                code: e.code(),
                detail: e.to_string(),
            },
            B::Invalid(e) => ApiError::Invalid(e),
            B::Json(e) => e.into(),
            B::Unauthorized(e) => ApiError::Unauthorized(e),
            B::Unconfirmed { order_id } => ApiError::Unconfirmed { order_id },
            B::Recovering => ApiError::Recovering,
            B::StockMoving => ApiError::StockMoving,
            e @ B::NotWarmed => ApiError::Unavailable(e.to_string()),
            B::ForeignState => ApiError::ForeignState,
            e @ B::BadArgument => ApiError::Internal(anyhow::anyhow!(e)),
            B::Catalog(e) => ApiError::shared_db("loading item metadata", &e),
            B::Stock(e) => ApiError::Stock(e),
        }
    }
}

impl From<crate::sales::error::SaleError> for ApiError {
    fn from(e: crate::sales::error::SaleError) -> Self {
        use crate::sales::error::SaleError as S;
        match e {
            S::NotFound => ApiError::NotFound("sale"),
            S::Invalid(e) => ApiError::Invalid(e),
            S::Refused { kind, detail } => ApiError::conflict(kind.code(), detail),
            S::Recovering => ApiError::Recovering,
            S::Unexpected(e) => ApiError::Internal(anyhow::anyhow!(e)),
            S::Db(e) => ApiError::Db(e),
            S::Stock(e) => ApiError::Stock(e),
        }
    }
}

impl From<crate::orders::OrderError> for ApiError {
    fn from(e: crate::orders::OrderError) -> Self {
        use crate::orders::OrderError as O;
        match e {
            O::NotFound => ApiError::NotFound("order"),
            O::NotPersisted => ApiError::NotPersisted,
            e @ O::AlreadyPaid(_) => ApiError::conflict("already_paid", e.to_string()),
            e @ O::Closed(_) => ApiError::conflict("order_closed", e.to_string()),
            O::WrongAmount { expected } => ApiError::Invalid(FieldError::new(
                "amount_cents",
                format!("the order's total is {expected} cents"),
            )),
            e @ O::CancelUnsupported => ApiError::conflict("cancel_unsupported", e.to_string()),
            e @ O::UnreadableEntry(_) => ApiError::Internal(anyhow::anyhow!(e)),
            O::LiveItems(e) => ApiError::shared_db("listing live items", &e),
            O::Db(e) => ApiError::Db(e),
            O::Stock(e) => ApiError::Stock(e),
        }
    }
}

impl From<crate::reconcile::ReconcileError> for ApiError {
    fn from(e: crate::reconcile::ReconcileError) -> Self {
        use crate::reconcile::ReconcileError;
        match e {
            ReconcileError::UnknownSale(_) => ApiError::NotFound("sale"),
            ReconcileError::Db(e) => ApiError::Db(e),
            ReconcileError::Redis(e) => ApiError::Stock(StockError::Redis(e)),
        }
    }
}

impl From<crate::buy::waiting_room::QueueError> for ApiError {
    fn from(e: crate::buy::waiting_room::QueueError) -> Self {
        use crate::buy::waiting_room::QueueError as Q;
        match e {
            Q::NotFound => ApiError::NotFound("sale"),
            Q::UnknownTicket => ApiError::NotFound("ticket"),
            e @ Q::NotQueued => ApiError::conflict("queue_not_used", e.to_string()),
            e @ Q::NotOpen(_) => ApiError::conflict("queue_not_open", e.to_string()),
            Q::Ended => ApiError::Ended,
            Q::Challenge(e) => ApiError::Forbidden {
                code: e.code(),
                detail: e.to_string(),
            },
            e @ Q::Full => ApiError::Unavailable(e.to_string()),
            Q::Db(e) => ApiError::Db(e),
            Q::Redis(e) => ApiError::Stock(StockError::from(e)),
        }
    }
}
