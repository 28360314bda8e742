//! Payment notifications: only the provider's, only fresh, only once, only small, only so many.

use std::time::Duration;

use reqwest::StatusCode;
use seckill::orders::signature;
use serde_json::{Value, json};

use crate::support::{
    PAYMENT_SECRET, STACK, TestApp, eventually, metric, send, spawn_with, test_settings,
};

async fn notify(app: &TestApp, body: &str, signed_at: i64) -> (StatusCode, Value) {
    let r = send(
        app.http
            .post(app.url("/payments/v1/notify"))
            .header(
                "x-signature",
                signature::sign(PAYMENT_SECRET.as_bytes(), signed_at, body.as_bytes()),
            )
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A persisted order of the app's: its id.
async fn persisted_order(app: &TestApp) -> String {
    let (sale, item) = app.create_live_sale(10, 1).await;
    let (status, body) = app.buy(sale, item, "payer", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["order_id"].as_str().unwrap().to_string();
    let db = app.db().clone();
    eventually(Duration::from_secs(30), || {
        let db = db.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
                .fetch_one(&db)
                .await
                .ok()?;
            (n == 1).then_some(())
        }
    })
    .await;
    id
}

#[tokio::test]
async fn a_stale_or_replayed_notification_is_refused_and_a_fresh_one_pays() {
    let app = spawn_with(test_settings(&STACK.kafka_brokers).await).await;
    let order = persisted_order(&app).await;
    let body =
        json!({"order_id": order, "amount_cents": 1999, "provider_ref": "pay-1"}).to_string();
    let now = chrono::Utc::now().timestamp();
    // Signed six minutes ago: outside the tolerance, whatever its signature.
    let (s, stale) = notify(&app, &body, now - 360).await;
    assert_eq!(
        (s, stale["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature"))
    );
    let (s, paid) = notify(&app, &body, now).await;
    assert_eq!(
        (s, paid["status"].as_str()),
        (StatusCode::OK, Some("paid")),
        "{paid}"
    );
    // The same signed notification again, as an eavesdropper would send it.
    let (s, replay) = notify(&app, &body, now).await;
    assert_eq!(
        (s, replay["code"].as_str()),
        (StatusCode::CONFLICT, Some("replayed"))
    );
    assert_eq!(
        metric(&app, "seckill_payments_total", r#"outcome="replayed""#).await,
        1.0
    );
    // The provider's own repeat, signed anew, is answered as the first.
    let (s, again) = notify(&app, &body, now - 1).await;
    assert_eq!(
        (s, again["status"].as_str()),
        (StatusCode::OK, Some("paid"))
    );
}

#[tokio::test]
async fn an_oversized_notification_is_refused_unread_and_a_flood_is_throttled() {
    let mut settings = test_settings("embedded").await;
    settings.limits.payments_per_sec = 5;
    let app = spawn_with(settings).await;
    let now = chrono::Utc::now().timestamp();
    let big = json!({"order_id": uuid::Uuid::now_v7(), "amount_cents": 1, "provider_ref": "x".repeat(9 * 1024)}).to_string();
    let (s, body) = notify(&app, &big, now).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let answers = futures::future::join_all((0..30).map(|n| {
        let body = json!({"order_id": uuid::Uuid::now_v7(), "amount_cents": 1, "provider_ref": format!("f{n}")}).to_string();
        let app = &app;
        async move { notify(app, &body, now).await.0 }
    }))
    .await;
    let limited = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        limited >= 15,
        "{limited} of 30 notifications at once were limited: {answers:?}"
    );
}
