//! `GET /admin/v1/sales/{id}/events`: a sale watched live as server-sent events, one `snapshot`
//! event a second (see `crate::sales::live`). Works with `curl -N -H "Authorization: Bearer …"`;
//! the console reads it with `fetch`, so the token travels in a header, never in the URL.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::{
        IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::ApiResult,
    extract::{Admin, ApiPath},
};
use crate::{api::state::AppState, buy::waiting_room::WaitingRoom, sales::live::LiveWatch};

/// Time between two snapshots.
const EVERY: Duration = Duration::from_secs(1);

/// The live route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// One server-sent event of the stream (its `event:` and `data:` lines).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: the events are written by `snapshots`
struct LiveEvent {
    /// `snapshot`, or `error` when one could not be taken (the next tick tries again).
    event: LiveEventKind,
    /// JSON: for `snapshot`, an object with `at`, `sale` (as `GET /admin/v1/sales/{id}` shows
    /// it), `items` (each `item_id`, `buy_rate_per_sec`, `sold_out_at`), `consumer_lag`,
    /// `outbox_backlog`, `report` (the latest reconciliation report) and `history`; for `error`,
    /// `{"detail": "..."}`.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// What a [`LiveEvent`] carries.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // a schema only
enum LiveEventKind {
    Snapshot,
    Error,
}

#[utoipa::path(
    get,
    path = "/admin/v1/sales/{id}/events",
    tag = "admin",
    description = "The sale's live figures as server-sent events: one `snapshot` a second (the sale as GET shows it, buy rates, sell-out times, consumer lag, outbox backlog, the latest reconciliation report and the history, and for a queued sale its waiting room under `queue`), `error` when one could not be taken. Ends when the server shuts down.",
    params(("id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64)),
    responses(
        (status = 200, description = "an event stream; each event as the schema describes it", content_type = "text/event-stream", body = LiveEvent),
        (status = 401, description = "`unauthorized`", body = super::doc::ErrorDoc),
        (status = 404, description = "`not_found`", body = super::doc::ErrorDoc),
        (status = 422, description = "`invalid_field`", body = super::doc::ErrorDoc),
    ),
    security(("adminToken" = []))
)]
async fn events(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<impl IntoResponse> {
    let watch = state.live.watch(id).await?;
    let stream =
        snapshots(watch, state.queue.clone()).take_until(state.stopping.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A snapshot at once, then one every [`EVERY`]; a failed one is an `error` event and the next
/// tick tries again.
fn snapshots(
    watch: LiveWatch,
    queue: WaitingRoom,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let ticks = tokio::time::interval(EVERY);
    futures::stream::unfold((watch, ticks), move |(mut watch, mut ticks)| {
        let queue = queue.clone();
        async move {
            ticks.tick().await;
            let event = match watch.next().await {
                Ok(snapshot) => {
                    let mut data = serde_json::to_value(&snapshot).unwrap_or_default();
                    if snapshot.sale.sale.admission.queued() {
                        // A queued sale's snapshot carries its waiting room (`null`: Redis failed).
                        data["queue"] = json!(queue.view(snapshot.sale.sale.id).await.ok());
                    }
                    Event::default()
                        .event("snapshot")
                        .json_data(&data)
                        .unwrap_or_else(|e| error_event(&e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, "live snapshot failed");
                    error_event(&e.to_string())
                }
            };
            Some((Ok(event), (watch, ticks)))
        }
    })
}

fn error_event(detail: &str) -> Event {
    Event::default()
        .event("error")
        .data(json!({ "detail": detail }).to_string())
}
