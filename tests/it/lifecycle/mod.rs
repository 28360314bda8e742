//! The order lifecycle end to end: payments, cancellation, expiry, units that return to the
//! sale exactly once, and the buyer's view of it.

mod events;
mod orders;
mod payment;
mod returns;

use std::{collections::HashMap, time::Duration};

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use seckill::{buy::identify::mint_token, orders::signature};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, STACK, TestApp, eventually, spawn_with, test_settings};

/// An app whose expiry job runs only when a test asks (`expire_once`), unless `job` is set.
pub(crate) async fn app(job: Option<Duration>) -> TestApp {
    let mut s = test_settings(&STACK.kafka_brokers).await;
    s.lifecycle.expiry_interval_ms = job.map_or(0, |d| d.as_millis() as u64);
    spawn_with(s).await
}

/// A one-item sale that started a second ago, with a payment window of `window_secs`.
pub(crate) async fn sale(app: &TestApp, stock: i64, limit: i64, window_secs: i64) -> (u64, u64) {
    let mut body = crate::helpers::live_sale_body(stock, limit);
    body["items"][0]["payment_window_secs"] = json!(window_secs);
    let (status, body) = app.admin(Method::POST, "/admin/v1/sales", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["items"][0]["payment_window_secs"], window_secs,
        "{body}"
    );
    (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    )
}

/// A signed payment notification: status and body.
pub(crate) async fn pay(
    app: &TestApp,
    order: &str,
    amount: i64,
    reference: &str,
) -> (StatusCode, Value) {
    let body =
        json!({"order_id": order, "amount_cents": amount, "provider_ref": reference}).to_string();
    // Every delivery is signed anew, as a provider does: a second earlier each time, so that
    // repeats within one second are not the same signed notification (a replay).
    static DELIVERIES: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let earlier = DELIVERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 240;
    let sig = signature::sign(
        app.settings().payment_secret.expose().as_bytes(),
        chrono::Utc::now().timestamp() - earlier,
        body.as_bytes(),
    );
    let r = app
        .http
        .post(app.url("/payments/v1/notify"))
        .header("x-signature", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A buyer's request to `path` (`GET` when `method` is GET).
pub(crate) async fn as_buyer(
    app: &TestApp,
    method: Method,
    user: &str,
    path: &str,
) -> (StatusCode, Value) {
    let token = mint_token(&JWT_SECRET, user, 600).unwrap();
    let r = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn cancel(app: &TestApp, user: &str, order: &str) -> (StatusCode, Value) {
    as_buyer(
        app,
        Method::POST,
        user,
        &format!("/api/v1/orders/{order}/cancel"),
    )
    .await
}

/// Order id by user, for `n` users `prefix0..` who each reserve one unit; asserts all 202.
pub(crate) async fn reserve_each(
    app: &TestApp,
    sale: u64,
    item: u64,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let buys = (0..n).map(|u| async move {
        let (s, body) = app.buy(sale, item, &format!("{prefix}{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        body["order_id"].as_str().unwrap().to_string()
    });
    futures::future::join_all(buys).await
}

pub(crate) async fn wait_rows(app: &TestApp, item: u64, n: i64) {
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
                .bind(item)
                .fetch_one(&db)
                .await
                .unwrap();
            (rows >= n).then_some(())
        }
    })
    .await;
}

pub(crate) async fn states(app: &TestApp, item: u64) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM orders WHERE item_id = ? GROUP BY status",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// MySQL's remaining units and Redis's.
pub(crate) async fn stocks(app: &TestApp, sale: u64, item: u64) -> (i64, i64) {
    let mysql: i64 =
        sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
            .bind(item)
            .fetch_one(app.db())
            .await
            .unwrap();
    let redis: i64 = app
        .redis()
        .get()
        .get(app.keys().item(sale, item).stock)
        .await
        .unwrap();
    (mysql, redis)
}

pub(crate) async fn assert_clean(app: &TestApp, sale: u64) {
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
}
