//! `/api/v1/orders`: a buyer's own orders (list, one, cancel). Someone else's order answers
//! 404, exactly like an unknown one.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    ApiError,
    error::ApiResult,
    extract::{ApiPath, ApiQuery, Buyer},
};
use crate::{
    domain::FieldError,
    orders::{ORDER_STATES, OrderQuery},
    state::AppState,
};

/// Largest page.
const MAX_LIMIT: i64 = 100;
/// Page size when none is asked for.
const DEFAULT_LIMIT: i64 = 20;

/// Buyer order routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{order_id}", get(get_order))
        .route("/api/v1/orders/{order_id}/cancel", post(cancel_order))
}

/// The query of `GET /api/v1/orders`, as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    sale_id: Option<u64>,
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

impl ListQuery {
    fn parse(self) -> Result<OrderQuery, FieldError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        if let Some(s) = &self.status
            && !ORDER_STATES.contains(&s.as_str())
        {
            return Err(FieldError::new(
                "status",
                format!("must be one of {}", ORDER_STATES.join(", ")),
            ));
        }
        let cursor = self
            .cursor
            .map(|c| {
                Uuid::try_parse(&c).map_err(|_| {
                    FieldError::new("cursor", "must be the next_cursor of a previous page")
                })
            })
            .transpose()?;
        Ok(OrderQuery {
            sale_id: self.sale_id,
            status: self.status,
            cursor,
            limit: limit as u32,
        })
    }
}

/// The caller's orders, newest first. A reservation appears here once persisted (normally
/// within a second); one still on its way is found by id (`GET /api/v1/orders/{id}`).
async fn list_orders(
    State(state): State<AppState>,
    Buyer(user): Buyer,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    let query = query.parse()?;
    let (orders, next) = state.orders.list(&user, &query).await?;
    Ok(Json(json!({ "orders": orders, "next_cursor": next })))
}

async fn get_order(
    State(state): State<AppState>,
    Buyer(user): Buyer,
    ApiPath(order_id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    // The buyer's own bucket: one buyer cannot make every lookup a store round trip.
    state
        .buy
        .gates()
        .check_user(user.as_ref())
        .map_err(|r| ApiError::RateLimited {
            retry_after: r.retry_after,
        })?;
    Ok(Json(state.orders.find(order_id, &user).await?))
}

/// Cancels the caller's unpaid order; its units go back on sale. Cancelling twice answers as
/// the first time.
async fn cancel_order(
    State(state): State<AppState>,
    Buyer(user): Buyer,
    ApiPath(order_id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    match state.lifecycle.cancel(order_id, user.as_ref()).await {
        Ok(order) => Ok(Json(crate::orders::OrderStatusView::from(order)).into_response()),
        Err(crate::lifecycle::LifecycleError::UnknownOrder) => {
            // Reserved, but not in MySQL yet: it can be cancelled in a moment.
            match state.orders.find(order_id, &user).await {
                Ok(_) => Ok(not_persisted()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// 409 `not_persisted` with `Retry-After: 1`: the order is reserved and on its way to MySQL.
pub fn not_persisted() -> Response {
    let mut r = ApiError::conflict(
        "not_persisted",
        "the order is reserved and on its way to the database; retry in a moment",
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}
