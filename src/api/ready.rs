//! Readiness verdicts, reused for a second: what every probe of one process shares, so a
//! probe storm costs one check a second.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// How long a readiness verdict is reused.
pub(crate) const READY_CACHE: Duration = Duration::from_secs(1);

/// A readiness verdict: the names of what is down (empty: ready).
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// What is down.
    pub down: Vec<&'static str>,
}

impl Verdict {
    /// 200 `ready`, or 503 `not_ready` naming what is down.
    pub fn response(&self) -> Response {
        if self.down.is_empty() {
            (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "code": "not_ready",
                    "detail": format!("unavailable: {}", self.down.join(", ")),
                    "down": self.down,
                })),
            )
                .into_response()
        }
    }
}

/// The last verdict and when it was reached, shared by every probe of one process.
#[derive(Clone, Default)]
pub struct ReadyCache {
    last: Arc<Mutex<Option<(Instant, Verdict)>>>,
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl ReadyCache {
    /// The cached verdict while fresh, otherwise the one `check` reaches (one check at a time;
    /// probes arriving meanwhile wait for it and share it).
    pub async fn get<F: Future<Output = Verdict>>(&self, check: impl FnOnce() -> F) -> Verdict {
        let fresh = || {
            self.last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .filter(|(at, _)| at.elapsed() < READY_CACHE)
                .map(|(_, v)| v.clone())
        };
        if let Some(v) = fresh() {
            return v;
        }
        let _one = self.refreshing.lock().await;
        if let Some(v) = fresh() {
            return v;
        }
        let verdict = check().await;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), verdict.clone()));
        verdict
    }
}
