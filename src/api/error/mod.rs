//! The one place errors become HTTP answers.
//!
//! Every error body is `{"code": "...", "detail": "..."}` (plus `field` for bad input), so
//! clients switch on `code`. Internal causes (Redis, MySQL, Kafka) are logged with their chain
//! and answered with a generic 500/503: a client never sees a stack of internals.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{buy::identify::AuthError, domain::FieldError, stock::StockError};

/// Result of a handler.
pub type ApiResult<T, E = ApiError> = Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: a field of the request is invalid.
    #[error("{0}")]
    Invalid(#[from] FieldError),
    /// 422: the body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// 400 `ambiguous_header`: a header that must appear once (who the buyer is, where the
    /// request came from) appears more than once.
    #[error("the {0} header appears more than once; send it once")]
    AmbiguousHeader(&'static str),
    /// 413 `body_too_large`: the body is over the route's limit (bytes).
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// 401: missing or bad credentials.
    #[error("{0}")]
    Unauthorized(#[from] AuthError),
    /// 401 `bad_signature`: a payment notification whose signature does not verify.
    #[error("{0}")]
    BadSignature(#[from] crate::orders::signature::SignatureError),
    /// 404: no such resource.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the request conflicts with the resource's state (`code` says how).
    #[error("{detail}")]
    Conflict {
        /// Machine-readable reason (`sold_out`, `limit_exceeded`, `version_conflict`, ...).
        code: &'static str,
        /// Human-readable detail.
        detail: String,
    },
    /// 409 `not_persisted`, with `Retry-After: 1`: the order is reserved and on its way to
    /// MySQL; the same request succeeds in a moment.
    #[error("the order is reserved and on its way to the database; retry in a moment")]
    NotPersisted,
    /// 409 `sold_out`: nothing left (the commonest answer of a sale, so its body is prebuilt).
    #[error("sold out")]
    SoldOut,
    /// 403 with a code: the request is understood and refused (a queued sale's admission, a
    /// join's proof of work).
    #[error("{detail}")]
    Forbidden {
        /// Machine-readable reason (`admission_required`, `challenge_failed`, ...).
        code: &'static str,
        /// Human-readable detail.
        detail: String,
    },
    /// 403: the sale has not started.
    #[error("the sale has not started")]
    NotStarted,
    /// 410: the sale has ended.
    #[error("the sale has ended")]
    Ended,
    /// 428: a precondition (version) is required.
    #[error("{0}")]
    PreconditionRequired(&'static str),
    /// 429: a token bucket is empty.
    #[error("too many requests")]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// 503: a dependency is down or the item is not ready; try again later.
    #[error("{0}")]
    Unavailable(String),
    /// 503 `unconfirmed`: the reservation was made but not confirmed durable in time (too few
    /// Redis replicas, or no Kafka acknowledgement); it may stand. The body names the order.
    #[error(
        "the reservation was made but could not be confirmed in time; it may stand: retry with the same Idempotency-Key, or look the order up"
    )]
    Unconfirmed {
        /// The order that may stand.
        order_id: uuid::Uuid,
    },
    /// 503 `recovering`: the item's Redis state is being rebuilt from MySQL.
    #[error("the sale is recovering from a storage fault; retry shortly")]
    Recovering,
    /// 503 `stock_moving`: the buyer's stock shard is short while units move to it.
    #[error("units are moving to this buyer's stock shard; retry shortly")]
    StockMoving,
    /// 503 `foreign_state`: the item's Redis state belongs to another sale (a deployment
    /// fault); nothing was sold.
    #[error("the sale is unavailable; the operators have been alerted")]
    ForeignState,
    /// 500: a bug or an unexpected failure; logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
    /// 500/503: MySQL failed.
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// 503: Redis failed.
    #[error("stock store error")]
    Stock(#[from] StockError),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    detail: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// The order an `unconfirmed` answer is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<uuid::Uuid>,
}

impl ApiError {
    /// The same answer again, for the refusals answered from memory (not started, ended,
    /// sold out); any other error becomes an internal one (never used so).
    pub fn same(&self) -> Self {
        match self {
            ApiError::NotStarted => ApiError::NotStarted,
            ApiError::Ended => ApiError::Ended,
            ApiError::SoldOut => ApiError::SoldOut,
            other => ApiError::Internal(anyhow::anyhow!("unexpected refusal {other}")),
        }
    }

    /// A 409 with a code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    /// A database error shared by a cache's waiters: connection trouble is a 503, anything
    /// else a 500; either way the cause is logged, not shown.
    pub(crate) fn shared_db(context: &'static str, e: &std::sync::Arc<sqlx::Error>) -> Self {
        if is_unavailable(e) {
            tracing::error!(error.message = %e, context, "database unavailable");
            ApiError::Unavailable("the database is unavailable; retry shortly".into())
        } else {
            ApiError::Internal(anyhow::anyhow!("{context}: {e}"))
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::MalformedJson(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::AmbiguousHeader(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::SoldOut | ApiError::NotPersisted => {
                StatusCode::CONFLICT
            }
            ApiError::NotStarted | ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Ended => StatusCode::GONE,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_)
            | ApiError::Stock(_)
            | ApiError::Unconfirmed { .. }
            | ApiError::Recovering
            | ApiError::StockMoving
            | ApiError::ForeignState => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Db(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_field",
            ApiError::MalformedJson(_) => "invalid_json",
            ApiError::AmbiguousHeader(_) => "ambiguous_header",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::BadSignature(_) => "bad_signature",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } | ApiError::Forbidden { code, .. } => code,
            ApiError::SoldOut => "sold_out",
            ApiError::NotPersisted => "not_persisted",
            ApiError::NotStarted => "not_started",
            ApiError::Ended => "ended",
            ApiError::PreconditionRequired(_) => "version_required",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unconfirmed { .. } => "unconfirmed",
            ApiError::Recovering => "recovering",
            ApiError::StockMoving => "stock_moving",
            ApiError::ForeignState => "foreign_state",
            ApiError::Stock(_) => "stock_unavailable",
            ApiError::Db(e) if is_unavailable(e) => "database_unavailable",
            ApiError::Internal(_) | ApiError::Db(_) => "internal",
        }
    }
}

use crate::stores::mysql::is_unavailable;

/// The body of every sold-out answer, serialised once.
const SOLD_OUT_BODY: &str = r#"{"code":"sold_out","detail":"sold out"}"#;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::SoldOut = self {
            return (
                StatusCode::CONFLICT,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                SOLD_OUT_BODY,
            )
                .into_response();
        }
        let status = self.status();
        match &self {
            ApiError::Internal(e) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "request failed");
            }
            ApiError::Db(e) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "database failure");
            }
            // Load, not a fault: counted in the buy outcomes, not logged per request.
            ApiError::Stock(StockError::Busy) => {}
            ApiError::Stock(e) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "redis failure");
            }
            _ => {}
        }
        let field = match &self {
            ApiError::Invalid(f) => Some(f.field.as_str()),
            _ => None,
        };
        // Borrowed where the text already exists: a sold-out answer is the common case.
        let detail = match &self {
            ApiError::Invalid(f) => std::borrow::Cow::Borrowed(f.detail.as_str()),
            ApiError::Conflict { detail, .. } | ApiError::Forbidden { detail, .. } => {
                std::borrow::Cow::Borrowed(detail.as_str())
            }
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        let order_id = match &self {
            ApiError::Unconfirmed { order_id } => Some(*order_id),
            _ => None,
        };
        let body = ErrorBody {
            code: self.code(),
            detail,
            field,
            order_id,
        };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => {
                retry_after.as_secs_f64().ceil().max(1.0) as u64
            }
            ApiError::Unconfirmed { .. } | ApiError::NotPersisted | ApiError::StockMoving => 1,
            ApiError::Recovering => 2,
            _ => 0,
        };
        if retry_after > 0
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

mod services;
#[cfg(test)]
mod tests;
