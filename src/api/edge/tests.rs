use std::sync::Arc;

use axum::{Router, body::Body, routing::get};
use prometheus::{IntCounterVec, Opts};
use tokio::sync::Notify;
use tower::ServiceExt;

use super::*;

fn counter() -> IntCounterVec {
    IntCounterVec::new(Opts::new("t_requests", "t"), &["route", "status"]).unwrap()
}

fn app(requests: IntCounterVec, gate: Arc<Notify>) -> Router {
    let edge = EdgeLayer::new(
        EdgeSettings {
            max_in_flight: 1,
            timeout: Duration::from_millis(200),
            span_every: 3,
            slow: Duration::from_secs(60),
        },
        requests,
    );
    Router::new()
        .route("/now", get(|| async { "ok" }))
        .route(
            "/wait",
            get(move || async move {
                gate.notified().await;
                "done"
            }),
        )
        .route("/never", get(std::future::pending::<&'static str>))
        .layer(edge)
}

fn get_req(path: &str) -> Request {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

async fn code_of(response: Response) -> String {
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn answers_carry_a_request_id_and_are_counted_by_route_and_status() {
    let requests = counter();
    let app = app(requests.clone(), Arc::default());
    for _ in 0..5 {
        let r = app.clone().oneshot(get_req("/now")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key(request_id::HEADER));
    }
    let r = app.clone().oneshot(get_req("/nowhere")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(requests.with_label_values(&["/now", "200"]).get(), 5);
    assert_eq!(requests.with_label_values(&["unmatched", "404"]).get(), 1);
}

#[tokio::test]
async fn a_request_over_the_timeout_is_answered_503() {
    let app = app(counter(), Arc::default());
    let r = app.oneshot(get_req("/never")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code_of(r).await, "unavailable");
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_and_the_place_comes_back() {
    let gate = Arc::new(Notify::new());
    let app = app(counter(), gate.clone());
    let first = tokio::spawn(app.clone().oneshot(get_req("/wait")));
    // The first request holds the only place until the gate opens.
    let mut shed = None;
    for _ in 0..100 {
        let r = app.clone().oneshot(get_req("/now")).await.unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let shed = shed.expect("a second request while one is in flight is shed");
    assert_eq!(code_of(shed).await, "unavailable");
    gate.notify_one();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    let r = app.oneshot(get_req("/now")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the place was given back");
}

#[test]
fn one_request_in_span_every_is_spanned() {
    let layer = EdgeLayer::new(
        EdgeSettings {
            max_in_flight: 10,
            timeout: Duration::from_secs(1),
            span_every: 4,
            slow: Duration::from_secs(1),
        },
        counter(),
    );
    let spanned = (0..40).filter(|_| layer.shared.spans_next()).count();
    assert_eq!(spanned, 10);
    let every = EdgeLayer::new(
        EdgeSettings {
            span_every: 1,
            ..layer.shared.settings.clone()
        },
        counter(),
    );
    assert!((0..5).all(|_| every.shared.spans_next()));
}
