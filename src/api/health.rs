//! Liveness, readiness and metrics.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 only when Redis, MySQL and
//! Kafka all answer, and otherwise 503 naming what is down, so a load balancer stops sending
//! buyers to an instance that cannot serve them.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;

use crate::{state::AppState, store};

/// Longest a readiness probe waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// The OpenAPI document of both APIs, kept in sync with the router by a test.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let redis = tokio::time::timeout(PROBE_TIMEOUT, state.redis.ping());
    let mysql = tokio::time::timeout(PROBE_TIMEOUT, store::ping(&state.db));
    let kafka = tokio::time::timeout(PROBE_TIMEOUT, state.kafka.ping(&state.settings.kafka.topic));
    let replicas = tokio::time::timeout(PROBE_TIMEOUT, replicas_check(&state));
    let (redis, mysql, kafka, replicas) = tokio::join!(redis, mysql, kafka, replicas);
    let verdict = |r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some("timed out".to_string()),
    };
    let checks = [
        (
            "redis",
            verdict(redis.map(|r| r.map_err(|e| e.to_string()))),
        ),
        (
            "mysql",
            verdict(mysql.map(|r| r.map_err(|e| e.to_string()))),
        ),
        (
            "kafka",
            verdict(kafka.map(|r| r.map_err(|e| e.to_string()))),
        ),
        ("redis_replicas", verdict(replicas)),
    ];
    let down: Vec<&str> = checks
        .iter()
        .filter(|(_, err)| err.is_some())
        .map(|(name, _)| *name)
        .collect();
    let details: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, err)| {
            let v = match err {
                None => json!("ok"),
                Some(e) => json!(e),
            };
            (name.to_string(), v)
        })
        .collect();
    if down.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": details})),
        )
    } else {
        tracing::warn!(?down, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "code": "not_ready",
                "detail": format!("unavailable: {}", down.join(", ")),
                "down": down,
                "checks": details,
            })),
        )
    }
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

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// What a stand-alone consumer's probes need.
#[derive(Clone)]
pub struct ConsumerProbe {
    /// MySQL.
    pub db: sqlx::MySqlPool,
    /// Kafka.
    pub kafka: crate::kafka::KafkaEndpoint,
    /// The orders topic.
    pub topic: String,
    /// The process's metrics.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The consumer's assignment and lag.
    pub health: crate::consumer::ConsumerHealth,
}

/// `/healthz`, `/readyz` (MySQL and Kafka) and `/metrics` for `seckill consume`.
pub fn consumer_router(probe: ConsumerProbe) -> Router {
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

async fn consumer_readyz(State(p): State<ConsumerProbe>) -> impl IntoResponse {
    let mysql = tokio::time::timeout(PROBE_TIMEOUT, store::ping(&p.db));
    let kafka = tokio::time::timeout(PROBE_TIMEOUT, p.kafka.ping(&p.topic));
    let (mysql, kafka) = tokio::join!(mysql, kafka);
    let mut down = Vec::new();
    let mut details = serde_json::Map::new();
    if !matches!(mysql, Ok(Ok(()))) {
        down.push("mysql");
    }
    if !matches!(kafka, Ok(Ok(()))) {
        down.push("kafka");
    }
    if let Some(stall) = p.health.stall() {
        down.push("partitions");
        details.insert("partitions".into(), json!(stall));
    }
    if down.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        tracing::warn!(?down, ?details, "consumer not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "code": "not_ready",
                "detail": format!("unavailable: {}", down.join(", ")),
                "down": down,
                "checks": details,
            })),
        )
    }
}
