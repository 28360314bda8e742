//! The waiting room on the real servers: order (FIFO after the start, the pre-queue drawn at
//! random, idempotent joins, two instances), admission (tokens on the buy path, proof of work)
//! and flow (max_active, stock × overbooking, lapses and returns, sold out to everyone).

mod admission;
mod flow;
mod front;
mod order;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, answer, send, token};

/// A queued one-item sale: `stock` units, one per buyer, from `starts_at` for 30 minutes, with
/// `admission` settings over `mode: queue`.
pub(crate) async fn queued_sale(
    app: &TestApp,
    stock: i64,
    starts_at: DateTime<Utc>,
    admission: Value,
) -> (u64, u64) {
    let mut policy = json!({"mode": "queue"});
    for (k, v) in admission.as_object().unwrap() {
        policy[k] = v.clone();
    }
    let body = json!({
        "name": "queued sale",
        "starts_at": starts_at.to_rfc3339(),
        "ends_at": (starts_at + chrono::Duration::minutes(30)).to_rfc3339(),
        "items": [{"sku": "q-1", "title": "Queued", "price_cents": 100,
                   "stock": stock, "per_user_limit": 1}],
        "admission": policy,
    });
    let (status, sale) = app.admin(Method::POST, "/admin/v1/sales", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["admission"]["mode"], "queue", "{sale}");
    (
        sale["id"].as_u64().unwrap(),
        sale["items"][0]["id"].as_u64().unwrap(),
    )
}

/// `user` joins `sale`'s queue on `app` with `body`.
pub(crate) async fn join_with(
    app: &TestApp,
    sale: u64,
    user: &str,
    body: Value,
) -> (StatusCode, Value) {
    let req = app
        .http
        .post(app.url(&format!("/api/v1/sales/{sale}/queue")))
        .bearer_auth(token(user))
        .json(&body);
    answer(send(req).await).await
}

/// `user` joins `sale`'s queue on `app`; the answer must be 200.
pub(crate) async fn join(app: &TestApp, sale: u64, user: &str) -> Value {
    let (status, body) = join_with(app, sale, user, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls `ticket` on `app`: the status, the body and `Retry-After`.
pub(crate) async fn poll_at(
    app: &TestApp,
    sale: u64,
    ticket: &str,
) -> (StatusCode, Value, Option<u64>) {
    let resp = send(
        app.http
            .get(app.url(&format!("/api/v1/sales/{sale}/queue/{ticket}"))),
    )
    .await;
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (status, body) = answer(resp).await;
    (status, body, retry)
}

/// Polls `ticket` until `done` holds for its answer (up to `within`), returning that answer.
pub(crate) async fn poll_until(
    app: &TestApp,
    sale: u64,
    ticket: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, body, _) = poll_at(app, sale, ticket).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ticket never got there; last answer {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A buy of one unit as `user` carrying `admission` (when given) in `X-Admission-Token`.
pub(crate) async fn buy_admitted(
    app: &TestApp,
    sale: u64,
    item: u64,
    user: &str,
    admission: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = app
        .buy_request(sale, item)
        .bearer_auth(token(user))
        .json(&json!({"quantity": 1}));
    if let Some(t) = admission {
        req = req.header("X-Admission-Token", t);
    }
    answer(send(req).await).await
}

/// The now-serving the board of `sale` shows through a fresh poll of `ticket`.
pub(crate) async fn now_serving(app: &TestApp, sale: u64, ticket: &str) -> u64 {
    poll_at(app, sale, ticket).await.1["now_serving"]
        .as_u64()
        .unwrap()
}

/// Waits until now-serving (seen through `ticket`) stays at `n` for two seconds.
pub(crate) async fn settles_at(app: &TestApp, sale: u64, ticket: &str, n: u64) {
    poll_until(app, sale, ticket, Duration::from_secs(20), |b| {
        b["now_serving"] == n
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        now_serving(app, sale, ticket).await,
        n,
        "now serving moved past {n}"
    );
}
