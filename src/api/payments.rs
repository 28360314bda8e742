//! `/payments/v1/notify`: the payment provider's notification that an order was paid, signed
//! with the shared secret (`X-Signature`: hex HMAC-SHA256 of the raw body).

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, error::ApiResult, orders::not_persisted};
use crate::{
    domain::FieldError,
    lifecycle::{LifecycleError, MAX_PROVIDER_REF, PaymentNotice, signature},
    orders::OrderStatusView,
    state::AppState,
};

/// Payment routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(notify))
}

/// Applies a payment: 200 with the order when paid now or by this very payment before; 409
/// `already_paid`, `order_closed` (the provider refunds) or `not_persisted` (retry); 422 for the
/// wrong amount; 401 for a bad signature. Nothing is written unless it answers 200.
#[utoipa::path(
    post,
    path = "/payments/v1/notify",
    tag = "payments",
    description = "The payment provider says an order is paid. The body is signed: `X-Signature` is the hex HMAC-SHA256 of the raw body with SECKILL_PAYMENT_SECRET. A repeat answers 200 again.",
    request_body = crate::lifecycle::PaymentNotice,
    responses(
        (status = 200, description = "the paid order", body = OrderStatusView),
        (status = 401, description = "a missing or wrong signature (`bad_signature`)", body = super::doc::ErrorDoc),
        (status = 404, description = "no such order (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "expired or cancelled (`order_closed`), paid with another reference (`already_paid`), not yet in MySQL (`not_persisted`)", body = super::doc::ErrorDoc),
        (status = 422, description = "a wrong amount or a bad field (`invalid_field`, `invalid_json`)", body = super::doc::ErrorDoc),
    ),
    security(("paymentSignature" = []))
)]
async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signature = headers.get("x-signature").and_then(|v| v.to_str().ok());
    signature::verify(
        state.settings.payment_secret.expose().as_bytes(),
        &body,
        signature,
    )?;
    let notice: PaymentNotice = crate::domain::json::parse(&body)?;
    if notice.provider_ref.is_empty() || notice.provider_ref.len() > MAX_PROVIDER_REF {
        return Err(FieldError::new(
            "provider_ref",
            format!("must be 1 to {MAX_PROVIDER_REF} characters"),
        )
        .into());
    }
    match state.lifecycle.pay(&notice).await {
        Ok(order) => Ok(Json(OrderStatusView::from(order)).into_response()),
        Err(LifecycleError::UnknownOrder) => {
            if state.orders.in_ledger(notice.order_id).await?.is_some() {
                Ok(not_persisted())
            } else {
                Err(ApiError::NotFound("order"))
            }
        }
        Err(e) => Err(e.into()),
    }
}
