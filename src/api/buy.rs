//! `/api/v1`: buyers reserve units; the public sale page.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{error::ApiResult, extract::ApiPath};
use crate::{
    api::state::AppState,
    buy::{BuyAnswer, BuyRequest},
    domain::{FieldError, IdempotencyKey},
};

/// Buyer routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order))
        .routes(routes!(sale_page))
}

/// Largest buy body accepted (it holds one small number).
const MAX_BODY: usize = 1024;

#[utoipa::path(
    post,
    path = "/api/v1/sales/{sale_id}/items/{item_id}/orders",
    tag = "buyers",
    description = "Reserves units of an item. A 202 means the reservation holds (what it was confirmed against depends on SECKILL_BUY_CONFIRM); the order then appears under /api/v1/orders. Send an `Idempotency-Key` to make retries safe: a repeat answers the first order.",
    params(
        ("sale_id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64),
        ("item_id" = u64, Path, description = "item id", minimum = 1, maximum = 9_007_199_254_740_991_i64),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters; a retry with the same key gets the first answer", min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$"),
        ("X-User-Id" = Option<String>, Header, description = "the buyer, from a trusted gateway (SECKILL_USER_IDENTITY=trusted_header only)"),
        ("X-Admission-Token" = Option<String>, Header, description = "a queued sale's admission token, from its waiting room (`POST .../queue`, then polls); an open sale ignores it"),
    ),
    request_body(content = Option<crate::buy::BuyBody>, description = "empty: one unit"),
    responses(
        (status = 202, description = "reserved", body = Reservation,
            headers(
                ("Location" = String, description = "the order's URL"),
                ("Idempotent-Replayed" = Option<String>, description = "`true` when this repeats an earlier answer"),
            ),
            links(("GetOrder" = (operation_id = "get_order", parameters(("order_id" = "$response.body#/order_id")))),
                  ("CancelOrder" = (operation_id = "cancel_order", parameters(("order_id" = "$response.body#/order_id")))))),
        (status = 400, description = "`X-User-Id` or `X-Forwarded-For` sent twice where the service believes it (`ambiguous_header`)", body = super::doc::ErrorDoc),
        (status = 401, description = "no or bad buyer token, or `X-User-Id` from an untrusted peer (`unauthorized`)", body = super::doc::ErrorDoc),
        (status = 403, description = "the sale has not started (`not_started`); a queued sale's buy without a valid admission of this buyer (`admission_required`, `admission_invalid`, `admission_foreign`, `admission_expired`)", body = super::doc::ErrorDoc),
        (status = 404, description = "no such sale item (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "`sold_out`, `insufficient_stock`, `limit_exceeded`", body = super::doc::ErrorDoc),
        (status = 410, description = "the sale has ended (`ended`)", body = super::doc::ErrorDoc),
        (status = 422, description = "a bad quantity, key or body (`invalid_field`, `invalid_json`)", body = super::doc::ErrorDoc),
        (status = 429, description = "a token bucket is empty (`rate_limited`)", body = super::doc::ErrorDoc,
            headers(("Retry-After" = String, description = "seconds"))),
        (status = 503, description = "`unconfirmed` (the order may stand: retry with the same key), `recovering`, `stock_moving` (units move to the buyer's stock shard: retry after Retry-After), `foreign_state`, `stock_unavailable`, `unavailable` (also when overloaded)", body = super::doc::ErrorDoc,
            headers(("Retry-After" = String, description = "seconds"))),
    ),
    security(("buyerToken" = []))
)]
async fn create_order(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath((sale_id, item_id)): ApiPath<(u64, u64)>,
    request: Request,
) -> ApiResult<Response> {
    // Headers are read in place (extracting a HeaderMap would copy it on the hottest route).
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    // Read only once the public gates pass (see `BuyService::buy`).
    let body = async move {
        axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
            FieldError::new(
                "body",
                format!("unreadable or larger than {MAX_BODY} bytes: {e}"),
            )
        })
    };
    let identity = super::extract::IdentityHeaders::read(headers, &state)?;
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|v| IdempotencyKey::parse(v.to_str().unwrap_or("\u{0}")))
        .transpose()?;
    let answer = state
        .buy
        .buy(
            BuyRequest {
                sale_id,
                item_id,
                authorization: identity.authorization,
                trusted_user: identity.trusted_user,
                idempotency_key: idempotency_key.as_ref(),
                client_ip: Some(
                    state
                        .auth
                        .proxies()
                        .client(peer.ip(), identity.forwarded_for),
                ),
                peer: Some(peer.ip()),
                admission: headers
                    .get("x-admission-token")
                    .and_then(|v| v.to_str().ok()),
            },
            body,
        )
        .await?;
    let (order_id, quantity, replayed) = match answer {
        BuyAnswer::Reserved {
            order_id, quantity, ..
        } => (order_id, quantity, false),
        BuyAnswer::Replayed {
            order_id, quantity, ..
        } => (order_id, quantity, true),
    };
    tracing::Span::current().record("order_id", tracing::field::display(order_id));
    let reservation = Reservation {
        order_id,
        status: "reserved",
        sale_id,
        item_id,
        quantity,
    };
    let mut response = (StatusCode::ACCEPTED, Json(reservation)).into_response();
    let h = response.headers_mut();
    if let Ok(loc) = HeaderValue::try_from(format!("/api/v1/orders/{order_id}")) {
        h.insert(header::LOCATION, loc);
    }
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The body of a `202` buy answer.
/// A reservation.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Reservation {
    order_id: Uuid,
    status: &'static str,
    sale_id: u64,
    item_id: u64,
    quantity: u32,
}

/// The public sale page (no token): window, phase, items, approximate remaining stock.
#[utoipa::path(
    get,
    path = "/api/v1/sales/{sale_id}",
    tag = "public",
    description = "The public sale page: window, items, prices, and roughly how many units remain.",
    params(("sale_id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64)),
    responses(
        (status = 200, description = "the sale page", body = crate::sales::page::PageOut),
        (status = 404, description = "no such sale (`not_found`)", body = super::doc::ErrorDoc),
        (status = 422, description = "`invalid_field`", body = super::doc::ErrorDoc),
    ),
)]
async fn sale_page(
    State(state): State<AppState>,
    ApiPath(sale_id): ApiPath<u64>,
) -> ApiResult<Response> {
    match state.sale_pages.page(sale_id).await {
        Ok(body) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Err(crate::sales::page::PageError::NotFound) => Err(crate::api::ApiError::NotFound("sale")),
        Err(crate::sales::page::PageError::Store(e)) => {
            tracing::error!(sale_id, error.message = %e, "sale page unavailable");
            Err(crate::api::ApiError::Unavailable(
                "the sale page is unavailable; retry shortly".into(),
            ))
        }
    }
}
