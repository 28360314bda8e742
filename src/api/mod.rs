//! HTTP: the router, extractors that turn bad input into JSON errors, and the layers every
//! request passes (metrics, load shedding, timeout).

pub mod admin;
pub mod buy;
pub mod console;
pub mod doc;
pub mod error;
pub mod extract;
pub mod health;
pub mod live;
pub mod orders;
pub mod payments;
pub mod request_id;

use std::time::Duration;

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    extract::{MatchedPath, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower::ServiceBuilder;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub use error::{ApiError, ApiResult};

/// The public surface's routes, each with its documentation.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(buy::router())
        .merge(orders::router())
        .merge(payments::router())
}

/// The admin surface's routes, each with its documentation.
fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(health::metrics_router())
        .merge(admin::router())
        .merge(live::router())
        .merge(console::router())
}

/// The public surface: buyers, the payment provider, probes and the API document.
pub fn public_router(state: AppState) -> Router {
    layered(public_routes().split_for_parts().0, state)
}

/// The admin surface: the admin API and its live events, the console and the docs page,
/// `/metrics`, probes and the API document, on its own listener (loopback by default).
pub fn admin_router(state: AppState) -> Router {
    layered(admin_routes().split_for_parts().0, state)
}

/// The OpenAPI document of both surfaces, from the same routers that serve them. Operations on
/// the admin listener name it as their server.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = doc::ApiDoc::openapi();
    let admin_server = utoipa::openapi::ServerBuilder::new()
        .url("http://127.0.0.1:8081")
        .description(Some("the admin listener (SECKILL_ADMIN_ADDR)"))
        .build();
    let mut admin = admin_routes().into_openapi();
    let public = public_routes().into_openapi();
    for (path, item) in admin.paths.paths.iter_mut() {
        if !public.paths.paths.contains_key(path) {
            item.servers = Some(vec![admin_server.clone()]);
        }
    }
    doc.merge(public);
    doc.merge(admin);
    doc::add_layer_answers(&mut doc);
    doc
}

/// The layers every request passes: metrics and spans outermost, then load shedding and the
/// request timeout; unknown routes answer a JSON 404.
fn layered(routes: Router<AppState>, state: AppState) -> Router {
    let max_in_flight = usize::try_from(state.settings.http.max_in_flight).unwrap_or(usize::MAX);
    let timeout = Duration::from_secs(state.settings.http.request_timeout_secs);
    routes
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(max_in_flight)
                .timeout(timeout),
        )
        // Outermost, so the 503s of shedding and timeouts are counted and spanned too.
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

async fn overloaded(err: BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Unavailable("the request timed out".into()).into_response()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Unavailable("the service is overloaded; retry shortly".into()).into_response()
    } else {
        ApiError::Internal(anyhow::anyhow!("unhandled middleware error: {err}")).into_response()
    }
}

/// Wraps every request in a span (method, route, request id, status, and the order id once the
/// buy path knows it), so any log line inside carries them; answers with the request id;
/// counts it by route and status (bounded labels: route templates, not paths).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let request_id = request_id::of(req.headers());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route,
        request_id = request_id.to_str().unwrap_or_default(),
        status = tracing::field::Empty,
        order_id = tracing::field::Empty,
    );
    let mut response = next.run(req).instrument(span.clone()).await;
    response
        .headers_mut()
        .insert(request_id::HEADER, request_id);
    let status = response.status();
    span.record("status", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        // Debug only: a flood of 4xx must not flood the log. Failures that need a human are
        // logged where they happen, inside the span, with the same request id.
        tracing::debug!(parent: &span, status = status.as_u16(), "answered with an error");
    }
    state
        .metrics
        .http_requests
        .with_label_values(&[route, status_label(status)])
        .inc();
    response
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        410 => "410",
        422 => "422",
        428 => "428",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
