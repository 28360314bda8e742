//! `/api/v1`: buyers reserve units; the public sale page.

use std::net::SocketAddr;

use axum::{
    Json, Router,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use uuid::Uuid;

use super::{ApiError, error::ApiResult, extract::ApiPath};
use crate::{
    auth::TRUSTED_USER_HEADER,
    buy::{BuyAnswer, BuyRequest},
    domain::{FieldError, IdempotencyKey},
    state::AppState,
};

/// Buyer routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sales/{sale_id}/items/{item_id}/orders",
            post(create_order),
        )
        .route("/api/v1/sales/{sale_id}", get(sale_page))
}

/// Largest buy body accepted (it holds one small number).
const MAX_BODY: usize = 1024;

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
            ApiError::from(FieldError::new(
                "body",
                format!("unreadable or larger than {MAX_BODY} bytes: {e}"),
            ))
        })
    };
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
                authorization: header_str(headers, "authorization"),
                trusted_user: header_str(headers, TRUSTED_USER_HEADER),
                idempotency_key: idempotency_key.as_ref(),
                client_ip: Some(
                    state
                        .auth
                        .proxies()
                        .client(peer.ip(), header_str(headers, "x-forwarded-for")),
                ),
                peer: Some(peer.ip()),
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
#[derive(serde::Serialize)]
struct Reservation {
    order_id: Uuid,
    status: &'static str,
    sale_id: u64,
    item_id: u64,
    quantity: u32,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The public sale page (no token): window, phase, items, approximate remaining stock.
async fn sale_page(
    State(state): State<AppState>,
    ApiPath(sale_id): ApiPath<u64>,
) -> ApiResult<Response> {
    match state.sale_pages.page(sale_id).await {
        Ok(body) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Err(crate::sale_page::PageError::NotFound) => Err(crate::api::ApiError::NotFound("sale")),
        Err(crate::sale_page::PageError::Store(e)) => {
            tracing::error!(sale_id, error.message = %e, "sale page unavailable");
            Err(crate::api::ApiError::Unavailable(
                "the sale page is unavailable; retry shortly".into(),
            ))
        }
    }
}
