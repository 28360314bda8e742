//! `/api/v1/orders`: a buyer's own orders (list, one, cancel). Someone else's order answers
//! 404, exactly like an unknown one.

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    ApiError,
    error::ApiResult,
    extract::{ApiPath, ApiQuery, Buyer},
};
use crate::{
    api::state::AppState,
    domain::FieldError,
    orders::lookup::{ORDER_STATES, OrderQuery, OrderStatusView},
};

/// Largest page.
const MAX_LIMIT: i64 = 100;
/// Page size when none is asked for.
const DEFAULT_LIMIT: i64 = 20;

/// Buyer order routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

/// The query of `GET /api/v1/orders`, as sent.
/// Which of the buyer's orders.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this sale's.
    #[param(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    sale_id: Option<u64>,
    /// Only orders in this state: `pending_payment`, `paid`, `cancelled`, `expired`, `rejected`.
    #[param(pattern = "^(pending_payment|paid|cancelled|expired|rejected)$")]
    status: Option<String>,
    /// Orders per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid)]
    cursor: Option<String>,
}

/// A page of the buyer's orders, newest first.
#[derive(Serialize, ToSchema)]
struct OrdersPage {
    orders: Vec<OrderStatusView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<Uuid>,
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
        if let Some(id) = self.sale_id
            && !(1..=super::admin::MAX_ID).contains(&id)
        {
            return Err(FieldError::new(
                "sale_id",
                format!("must be between 1 and {}", super::admin::MAX_ID),
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
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "buyers",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of the buyer's orders, newest first", body = OrdersPage),
        (status = 400, description = "`X-User-Id` or `X-Forwarded-For` sent twice where the service believes it (`ambiguous_header`)", body = super::doc::ErrorDoc),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 422, description = "a bad filter or cursor (`invalid_field`)", body = super::doc::ErrorDoc),
        (status = 429, description = "the buyer's bucket is empty (`rate_limited`)", body = super::doc::ErrorDoc, headers(("Retry-After" = String, description = "seconds"))),
    ),
    security(("buyerToken" = []))
)]
async fn list_orders(
    State(state): State<AppState>,
    Buyer(user): Buyer,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    buyer_bucket(&state, &user)?;
    let query = query.parse()?;
    let (orders, next_cursor) = state.orders.list(&user, &query).await?;
    Ok(Json(OrdersPage {
        orders,
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{order_id}",
    tag = "buyers",
    description = "One of the buyer's orders: `reserved` until MySQL has it, then `pending_payment`, `paid`, `cancelled`, `expired` (or `rejected`).",
    params(("order_id" = Uuid, Path, description = "the order id a buy answered")),
    responses(
        (status = 200, description = "the order", body = OrderStatusView),
        (status = 400, description = "`X-User-Id` or `X-Forwarded-For` sent twice where the service believes it (`ambiguous_header`)", body = super::doc::ErrorDoc),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "no such order of this buyer (`not_found`)", body = super::doc::ErrorDoc),
        (status = 422, description = "not a UUID (`invalid_field`)", body = super::doc::ErrorDoc),
        (status = 429, description = "`rate_limited`", body = super::doc::ErrorDoc, headers(("Retry-After" = String, description = "seconds"))),
    ),
    security(("buyerToken" = []))
)]
async fn get_order(
    State(state): State<AppState>,
    Buyer(user): Buyer,
    ApiPath(order_id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    buyer_bucket(&state, &user)?;
    Ok(Json(state.orders.find(order_id, &user).await?))
}

/// Cancels the caller's unpaid order; its units go back on sale. Cancelling twice answers as
/// the first time.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{order_id}/cancel",
    tag = "buyers",
    description = "Cancels an unpaid order; its units go back on sale at once.",
    params(("order_id" = Uuid, Path, description = "the order id a buy answered")),
    responses(
        (status = 200, description = "the cancelled order (or the state that stands, for a repeat)", body = OrderStatusView),
        (status = 400, description = "`X-User-Id` or `X-Forwarded-For` sent twice where the service believes it (`ambiguous_header`)", body = super::doc::ErrorDoc),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "`not_found`", body = super::doc::ErrorDoc),
        (status = 409, description = "paid (`already_paid`), expired or cancelled (`order_closed`), not yet in MySQL (`not_persisted`, retry), a sale without payment windows (`cancel_unsupported`)", body = super::doc::ErrorDoc),
        (status = 422, description = "`invalid_field`", body = super::doc::ErrorDoc),
        (status = 429, description = "the buyer's bucket is empty (`rate_limited`)", body = super::doc::ErrorDoc, headers(("Retry-After" = String, description = "seconds"))),
    ),
    security(("buyerToken" = []))
)]
async fn cancel_order(
    State(state): State<AppState>,
    Buyer(user): Buyer,
    ApiPath(order_id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    buyer_bucket(&state, &user)?;
    if !crate::domain::order_id::could_be_users(order_id, user.as_ref(), chrono::Utc::now()) {
        return Err(ApiError::NotFound("order"));
    }
    let order = state.lifecycle.cancel(order_id, user.as_ref()).await?;
    Ok(Json(crate::orders::lookup::OrderStatusView::from(order)).into_response())
}

/// Takes a token from the buyer's own bucket (the one buys take too): one buyer cannot make
/// every request a store round trip.
fn buyer_bucket(state: &AppState, user: &crate::domain::UserId) -> Result<(), ApiError> {
    state
        .buy
        .gates()
        .check_user(user.as_ref())
        .map_err(|r| ApiError::RateLimited {
            retry_after: r.retry_after,
        })
}
