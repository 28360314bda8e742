//! Liveness, readiness and metrics.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 only when the API can serve
//! buys: Redis and MySQL answer (and, in `replica` mode, the Redis master has its replicas),
//! and otherwise 503 naming what is down, so a load balancer stops sending buyers to an
//! instance that cannot serve them. Kafka is not among them: the outbox holds reservations
//! through a broker outage, and a Kafka blip must not take every API pod out of the Service.
//! The verdict is cached for [`super::ready::READY_CACHE`], so probes (which anyone can send) cost the
//! dependencies at most one round of pings a second; what failed is logged, never shown.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ready::{ReadyCache, Verdict};
use crate::{api::state::AppState, stores::mysql};

/// Longest a readiness probe waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes (on both listeners).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `/metrics` (the admin listener).
pub(crate) fn metrics_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
struct Status {
    status: String,
}

/// A 503 of `/readyz`: what is down.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only
struct NotReady {
    /// `not_ready`.
    code: String,
    detail: String,
    /// `redis`, `redis_replicas`, `mysql`.
    down: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "public",
    description = "Liveness: 200 while the process runs.",
    responses((status = 200, description = "alive", body = Status)),
)]
async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Runs one probe with the timeout; logs and names it when it fails.
async fn probe<E: std::fmt::Display>(
    name: &'static str,
    f: impl Future<Output = Result<(), E>>,
) -> Option<&'static str> {
    match tokio::time::timeout(PROBE_TIMEOUT, f).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(dependency = name, error.message = %e, "not ready");
            Some(name)
        }
        Err(_) => {
            tracing::warn!(dependency = name, "not ready: the probe timed out");
            Some(name)
        }
    }
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "public",
    description = "Readiness: Redis and MySQL answer (and the Redis master has its replicas in `replica` mode). Checked at most once a second; what failed is logged, not shown.",
    responses(
        (status = 200, description = "ready", body = Status),
        (status = 503, description = "not ready (`not_ready`), naming what is down", body = NotReady),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let verdict = state
        .ready
        .get(|| async {
            let (redis, mysql, replicas) = tokio::join!(
                probe("redis", state.redis.ping()),
                probe("mysql", mysql::ping(&state.db)),
                probe("redis_replicas", replicas_check(&state)),
            );
            Verdict {
                down: [redis, mysql, replicas].into_iter().flatten().collect(),
            }
        })
        .await;
    verdict.response()
}

/// In `replica` confirmation mode, a master with fewer replicas than a buy waits for cannot
/// confirm anything: every buy would answer 503 `unconfirmed`.
async fn replicas_check(state: &AppState) -> Result<(), String> {
    let Some(wait) = state.stock.replicas() else {
        return Ok(());
    };
    match state.redis.connected_replicas().await {
        Ok(Some(n)) if n < u64::from(wait.replicas) => Err(format!(
            "the Redis master has {n} connected replicas; buys wait for {} (SECKILL_REDIS_MIN_REPLICAS)",
            wait.replicas
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "admin",
    description = "Prometheus metrics (admin listener).",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)),
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// What a stand-alone consumer's probes need.
#[derive(Clone)]
pub(crate) struct ConsumerProbe {
    /// MySQL.
    pub db: sqlx::MySqlPool,
    /// One Kafka client for every probe (building one per probe costs a connection each).
    pub kafka: Arc<crate::stores::kafka::Pinger>,
    /// The orders topic.
    pub topic: String,
    /// The process's metrics.
    pub metrics: std::sync::Arc<crate::observe::metrics::Metrics>,
    /// The consumer's assignment and lag.
    pub health: crate::consumer::ConsumerHealth,
    /// The last verdict.
    pub ready: ReadyCache,
}

/// `/healthz`, `/readyz` (MySQL, Kafka, partitions) and `/metrics` for `seckill consume`.
pub(crate) fn consumer_router(probe: ConsumerProbe) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(consumer_readyz))
        .route(
            "/metrics",
            get(|State(p): State<ConsumerProbe>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    p.metrics.render(),
                )
            }),
        )
        .with_state(probe)
}

async fn consumer_readyz(State(p): State<ConsumerProbe>) -> Response {
    let verdict = p
        .ready
        .get(|| async {
            let (mysql, kafka) = tokio::join!(
                probe("mysql", mysql::ping(&p.db)),
                probe("kafka", p.kafka.ping(&p.topic)),
            );
            let mut down: Vec<&'static str> = [mysql, kafka].into_iter().flatten().collect();
            if let Some(stall) = p.health.stall() {
                tracing::warn!(%stall, "consumer not ready");
                down.push("partitions");
            }
            Verdict { down }
        })
        .await;
    verdict.response()
}
