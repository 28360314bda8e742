//! HTTP: the router, extractors that turn bad input into JSON errors, and the layers every
//! request passes (load shedding, timeout, request id, metrics, logs).

pub mod admin;
pub mod buy;
pub mod console;
pub mod doc;
pub mod edge;
pub mod error;
pub mod extract;
pub mod front;
pub mod health;
pub mod listener;
pub mod live;
pub mod orders;
pub mod payments;
pub mod queue;
pub mod ready;
pub mod request_id;
pub mod state;

use std::time::Duration;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::api::state::AppState;

pub use error::{ApiError, ApiResult};

/// The public surface's routes, each with its documentation.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(doc::public_router())
        .merge(buy::router())
        .merge(queue::router())
        .merge(orders::router())
        .merge(payments::router())
}

/// The admin surface's routes, each with its documentation.
fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(doc::admin_router())
        .merge(health::metrics_router())
        .merge(admin::router())
        .merge(live::router())
        .merge(console::router())
}

/// The public surface: buyers, the payment provider, probes and its API document; the
/// waiting room's polls are answered before routing ([`front`]).
pub fn public_router(state: AppState) -> front::Front {
    let edge = edge_layer(&state, state.settings.log.span_every);
    let router = layered(
        public_routes().split_for_parts().0,
        state.clone(),
        edge.clone(),
    );
    front::Front::with_polls(router, state, edge)
}

/// The admin surface: the admin API and its live events, the console and the docs page,
/// `/metrics`, probes and its API document, on its own listener (loopback by default).
pub fn admin_router(state: AppState) -> Router {
    let edge = edge_layer(&state, 1);
    layered(admin_routes().split_for_parts().0, state, edge)
}

/// The public listener's OpenAPI document: the buyers' routes, the sale page, payment
/// notifications, probes and `/openapi.json`, from the same router that serves them.
pub(crate) fn public_document() -> utoipa::openapi::OpenApi {
    doc::document(public_routes().into_openapi(), doc::Listener::Public)
}

/// The admin listener's OpenAPI document: the admin API, its live events, the console, the
/// docs page, `/metrics`, probes and `/openapi.json`, from the same router that serves them.
pub(crate) fn admin_document() -> utoipa::openapi::OpenApi {
    doc::document(admin_routes().into_openapi(), doc::Listener::Admin)
}

/// The layer every request passes ([`edge`]: load shedding, timeout, request id, counting,
/// logs; one span in `span_every` requests).
fn edge_layer(state: &AppState, span_every: u64) -> edge::EdgeLayer {
    let http = &state.settings.http;
    edge::EdgeLayer::new(
        edge::EdgeSettings {
            max_in_flight: usize::try_from(http.max_in_flight).unwrap_or(usize::MAX),
            timeout: Duration::from_secs(http.request_timeout_secs),
            span_every,
            slow: edge::SLOW,
        },
        state.metrics.http.requests.clone(),
    )
}

/// `routes` behind `edge`; unknown routes answer a JSON 404.
fn layered(routes: Router<AppState>, state: AppState, edge: edge::EdgeLayer) -> Router {
    routes.fallback(not_found).layer(edge).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}
