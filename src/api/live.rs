//! `GET /admin/v1/sales/{id}/events`: a sale watched live as server-sent events, one `snapshot`
//! event a second (see `crate::sales::live`). Works with `curl -N -H "Authorization: Bearer …"`;
//! the console reads it with `fetch`, so the token travels in a header, never in the URL.

use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::State,
    response::{
        IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures::{Stream, StreamExt};
use serde_json::json;

use super::{
    error::ApiResult,
    extract::{Admin, ApiPath},
};
use crate::{sales::live::LiveWatch, state::AppState};

/// Time between two snapshots.
const EVERY: Duration = Duration::from_secs(1);

/// The live route.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/sales/{id}/events", get(events))
}

async fn events(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<impl IntoResponse> {
    let watch = state.live.watch(id).await?;
    let stream = snapshots(watch).take_until(state.stopping.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A snapshot at once, then one every [`EVERY`]; a failed one is an `error` event and the next
/// tick tries again.
fn snapshots(watch: LiveWatch) -> impl Stream<Item = Result<Event, Infallible>> {
    let ticks = tokio::time::interval(EVERY);
    futures::stream::unfold((watch, ticks), |(mut watch, mut ticks)| async move {
        ticks.tick().await;
        let event = match watch.next().await {
            Ok(snapshot) => Event::default()
                .event("snapshot")
                .json_data(&snapshot)
                .unwrap_or_else(|e| error_event(&e.to_string())),
            Err(e) => {
                tracing::warn!(error.message = %e, "live snapshot failed");
                error_event(&e.to_string())
            }
        };
        Some((Ok(event), (watch, ticks)))
    })
}

fn error_event(detail: &str) -> Event {
    Event::default()
        .event("error")
        .data(json!({ "detail": detail }).to_string())
}
