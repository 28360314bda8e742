//! The admin events stream as a plain HTTP client sees it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, send};

#[tokio::test]
async fn the_events_stream_speaks_sse_to_curl_and_ends_at_shutdown() {
    let app = crate::support::spawn_app().await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let url = app.admin_url(&format!("/admin/v1/sales/{sale}/events"));
    let r = send(app.http.get(&url)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send(
        app.http
            .get(app.admin_url("/admin/v1/sales/999999/events"))
            .bearer_auth(&*ADMIN_TOKEN),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) = app.buy(sale, item, "watched", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut r = send(app.http.get(&url).bearer_auth(&*ADMIN_TOKEN)).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    // Two snapshots, a second apart; each names the sale's figures.
    let mut text = String::new();
    while text.matches("event: snapshot").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("a snapshot a second")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let snap: Value = serde_json::from_str(first).unwrap();
    assert_eq!(snap["sale"]["id"], sale);
    assert_eq!(snap["sale"]["items"][0]["reservations"], 1);
    assert!(snap["items"][0]["buy_rate_per_sec"].is_number());
    assert!(snap.get("consumer_lag").is_some() && snap.get("history").is_some());
    // Graceful shutdown does not wait for a watcher to hang up.
    let stopped = tokio::time::timeout(Duration::from_secs(20), app.stop()).await;
    assert!(stopped.is_ok(), "an open event stream held the shutdown");
    drop(r);
}
