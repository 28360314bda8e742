//! The poll answered before routing (`api::front`): counted under its route, with a request
//! id, through the same layer as routed requests; its neighbours still reach the router.

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;

use super::{join, poll_at, queued_sale};
use crate::support::{answer, metric, send, spawn_app};

const POLL_ROUTE: &str = r#"route="/api/v1/sales/{sale_id}/queue/{ticket}""#;

#[tokio::test]
async fn a_poll_answered_before_routing_is_counted_and_its_neighbours_are_routed() {
    let app = spawn_app().await;
    let start = Utc::now() - chrono::Duration::seconds(1);
    let (sale, _) = queued_sale(
        &app,
        10,
        start,
        json!({"admit_per_sec": 1, "max_active": 1}),
    )
    .await;
    join(&app, sale, "front-first").await;
    let ticket = join(&app, sale, "front-second").await["ticket"]
        .as_str()
        .unwrap()
        .to_string();

    let ok = format!("{POLL_ROUTE},status=\"200\"");
    let before = metric(&app, "seckill_http_requests_total", &ok).await;
    for _ in 0..3 {
        let (status, body, retry) = poll_at(&app, sale, &ticket).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(retry.is_some(), "a poll carries Retry-After");
    }
    let after = metric(&app, "seckill_http_requests_total", &ok).await;
    assert_eq!(
        after - before,
        3.0,
        "each poll is counted under the route's template"
    );

    // The request id is the caller's, as on every routed request.
    let resp = send(
        app.http
            .get(app.url(&format!("/api/v1/sales/{sale}/queue/{ticket}")))
            .header("x-request-id", "front-poll-1"),
    )
    .await;
    assert_eq!(resp.headers()["x-request-id"], "front-poll-1");

    // A foreign ticket: 404, counted too.
    let missing = format!("{POLL_ROUTE},status=\"404\"");
    let (status, body, _) = poll_at(&app, sale, "AQGCgICAAXBvbGxlcg").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        metric(&app, "seckill_http_requests_total", &missing).await,
        1.0
    );

    // What is not a poll goes to the router: a sale id that is not a number (422 naming it),
    // and the challenge route (a buyer token is needed there).
    let (status, body) = answer(send(app.http.get(app.url("/api/v1/sales/x/queue/t"))).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "sale_id", "{body}");
    let (status, body) = answer(
        send(
            app.http
                .get(app.url(&format!("/api/v1/sales/{sale}/queue/challenge"))),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
}
