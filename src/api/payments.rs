//! `/payments/v1/notify`: the payment provider's notification that an order was paid, signed
//! with the shared secret and a timestamp, as Stripe signs its webhooks (see
//! [`signature`]): `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
//! Bodies are capped at 8 KiB and the route has a token bucket of its own; a notification
//! signed more than 5 minutes from the server's clock, or seen before, is refused.

use axum::{
    Json,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, error::ApiResult};
use crate::{
    api::state::AppState,
    domain::FieldError,
    orders::{
        OrderError,
        lifecycle::{MAX_PROVIDER_REF, PaymentNotice},
        lookup::OrderStatusView,
        replay::SeenSignatures,
        signature,
    },
};

/// Largest notification body accepted.
pub(crate) const MAX_BODY: usize = 8 * 1024;

/// Payment routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(notify))
}

/// Applies a payment: 200 with the order when paid now or by this very payment before; 409
/// `already_paid`, `order_closed` (the provider refunds), `not_persisted` (retry, signed
/// anew) or `replayed`; 422 for the wrong amount; 401 for a bad or stale signature; 413 for a
/// body over 8 KiB; 429 past the route's bucket. Nothing is written unless it answers 200.
#[utoipa::path(
    post,
    path = "/payments/v1/notify",
    tag = "payments",
    description = "The payment provider says an order is paid. The body is signed with a timestamp: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" with SECKILL_PAYMENT_SECRET>`. A signature more than 300 s from the server's clock is refused (401), and so is one seen before (409 `replayed`): sign each delivery anew. Bodies are at most 8 KiB. A repeat of the same payment, signed anew, answers 200 again.",
    request_body = crate::orders::lifecycle::PaymentNotice,
    responses(
        (status = 200, description = "the paid order", body = OrderStatusView),
        (status = 401, description = "a missing, wrong or stale signature (`bad_signature`)", body = super::doc::ErrorDoc),
        (status = 404, description = "no such order (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "expired or cancelled (`order_closed`), paid with another reference (`already_paid`), not yet in MySQL (`not_persisted`), this signed notification was seen before (`replayed`)", body = super::doc::ErrorDoc),
        (status = 413, description = "a body over 8 KiB (`body_too_large`)", body = super::doc::ErrorDoc),
        (status = 422, description = "a wrong amount or a bad field (`invalid_field`, `invalid_json`)", body = super::doc::ErrorDoc),
        (status = 429, description = "too many notifications (`rate_limited`)", body = super::doc::ErrorDoc,
            headers(("Retry-After" = String, description = "seconds"))),
    ),
    security(("paymentSignature" = []))
)]
async fn notify(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    state
        .buy
        .gates()
        .check_payments()
        .map_err(|r| ApiError::RateLimited {
            retry_after: r.retry_after,
        })?;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::BodyTooLarge(MAX_BODY))?;
    let signed = signature::verify(
        state.settings.payment_secret.expose().as_bytes(),
        &body,
        parts
            .headers
            .get("x-signature")
            .and_then(|v| v.to_str().ok()),
        chrono::Utc::now().timestamp(),
    )?;
    let seen = SeenSignatures::new(state.redis.clone(), state.stock.keys().clone());
    if !seen
        .first_sight(&signed)
        .await
        .map_err(crate::stock::StockError::from)?
    {
        state
            .metrics
            .orders
            .payments
            .with_label_values(&["replayed"])
            .inc();
        return Err(ApiError::conflict(
            "replayed",
            "this signed notification was received before; sign each delivery anew",
        ));
    }
    let applied = apply(&state, &body).await;
    if applied.as_ref().is_err_and(retryable) || matches!(applied, Ok(Applied::NotPersisted)) {
        // Not applied, for a reason the provider retries: the same signed notification may
        // come again.
        let _ = seen.forget(&signed).await;
    }
    match applied? {
        Applied::Paid(order) => Ok(Json(*order).into_response()),
        Applied::NotPersisted => Err(ApiError::NotPersisted),
    }
}

/// What a verified notification came to.
enum Applied {
    /// The order is paid (now, or by this very payment before).
    Paid(Box<OrderStatusView>),
    /// The order is reserved and not in MySQL yet: the provider retries.
    NotPersisted,
}

/// Parses and applies a verified notification.
async fn apply(state: &AppState, body: &[u8]) -> Result<Applied, ApiError> {
    let notice: PaymentNotice = crate::domain::json::parse(body)?;
    if notice.provider_ref.is_empty() || notice.provider_ref.len() > MAX_PROVIDER_REF {
        return Err(FieldError::new(
            "provider_ref",
            format!("must be 1 to {MAX_PROVIDER_REF} characters"),
        )
        .into());
    }
    match state.lifecycle.pay(&notice).await {
        Ok(order) => Ok(Applied::Paid(Box::new(OrderStatusView::from(order)))),
        Err(OrderError::NotPersisted) => Ok(Applied::NotPersisted),
        Err(e) => Err(e.into()),
    }
}

/// A failure the provider retries (a store down).
fn retryable(e: &ApiError) -> bool {
    e.status().is_server_error()
}
