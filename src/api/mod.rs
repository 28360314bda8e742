//! HTTP: the router, extractors that turn bad input into JSON errors, and the layers every
//! request passes (load shedding, timeout, request id, metrics, logs).

pub mod admin;
pub mod buy;
pub mod console;
pub mod doc;
pub mod edge;
pub mod error;
pub mod extract;
pub mod health;
pub mod listener;
pub mod live;
pub mod orders;
pub mod payments;
pub mod request_id;

use std::time::Duration;

use axum::Router;
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
    let span_every = state.settings.log.span_every;
    layered(public_routes().split_for_parts().0, state, span_every)
}

/// The admin surface: the admin API and its live events, the console and the docs page,
/// `/metrics`, probes and the API document, on its own listener (loopback by default).
pub fn admin_router(state: AppState) -> Router {
    layered(admin_routes().split_for_parts().0, state, 1)
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

/// The layer every request passes ([`edge`]: load shedding, timeout, request id, counting,
/// logs; one span in `span_every` requests); unknown routes answer a JSON 404.
fn layered(routes: Router<AppState>, state: AppState, span_every: u64) -> Router {
    let http = &state.settings.http;
    let edge = edge::EdgeLayer::new(
        edge::EdgeSettings {
            max_in_flight: usize::try_from(http.max_in_flight).unwrap_or(usize::MAX),
            timeout: Duration::from_secs(http.request_timeout_secs),
            span_every,
            slow: Duration::from_millis(state.settings.log.slow_ms),
        },
        state.metrics.http_requests.clone(),
    );
    routes.fallback(not_found).layer(edge).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}
