//! Orders after the buy: payment notifications, a buyer's requests and cancels, the states MySQL
//! holds, the stock on both sides, and an app whose expiry job runs only when a test asks.

use std::{collections::HashMap, time::Duration};

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use seckill::{orders::signature, reconcile::SaleReport};
use serde_json::{Value, json};

use super::{
    STACK, TestApp, answer, eventually, mysql_stock, reserve_each, send, spawn_with, test_settings,
    token, wait_rows,
};

/// An app whose expiry job runs only when a test asks (`expire_once`), unless `job` is set.
pub async fn lifecycle_app(job: Option<Duration>) -> TestApp {
    let mut s = test_settings(&STACK.kafka_brokers).await;
    s.lifecycle.expiry_interval_ms = job.map_or(0, |d| d.as_millis() as u64);
    spawn_with(s).await
}

/// A signed payment notification: status and body.
pub async fn pay(app: &TestApp, order: &str, amount: i64, reference: &str) -> (StatusCode, Value) {
    let body =
        json!({"order_id": order, "amount_cents": amount, "provider_ref": reference}).to_string();
    // Every delivery is signed anew, as a provider does, and never with a timestamp this body
    // was signed with before: the same body and timestamp would be the same signed notification
    // (a replay). Repeats within a second take the next second.
    static SIGNED: std::sync::Mutex<Option<std::collections::HashMap<String, i64>>> =
        std::sync::Mutex::new(None);
    let t = {
        let mut signed = SIGNED.lock().unwrap_or_else(|e| e.into_inner());
        let last = signed
            .get_or_insert_default()
            .entry(body.clone())
            .or_insert(i64::MIN);
        *last = chrono::Utc::now().timestamp().max(last.saturating_add(1));
        *last
    };
    let sig = signature::sign(
        app.settings().payment_secret.expose().as_bytes(),
        t,
        body.as_bytes(),
    );
    let req = app
        .http
        .post(app.url("/payments/v1/notify"))
        .header("x-signature", sig)
        .header("content-type", "application/json")
        .body(body);
    answer(send(req).await).await
}

/// A buyer's request to `path` (`GET` when `method` is GET).
pub async fn as_buyer(
    app: &TestApp,
    method: Method,
    user: &str,
    path: &str,
) -> (StatusCode, Value) {
    let req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token(user));
    answer(send(req).await).await
}

/// `user` cancels `order`.
pub async fn cancel(app: &TestApp, user: &str, order: &str) -> (StatusCode, Value) {
    as_buyer(
        app,
        Method::POST,
        user,
        &format!("/api/v1/orders/{order}/cancel"),
    )
    .await
}

/// How many orders of the item are in each status.
pub async fn states(app: &TestApp, item: u64) -> HashMap<String, i64> {
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
pub async fn stocks(app: &TestApp, sale: u64, item: u64) -> (i64, i64) {
    let mysql = mysql_stock(app.db(), item).await;
    let redis: i64 = app
        .redis()
        .get()
        .get(app.item_keys(sale, item).await.stock)
        .await
        .unwrap();
    (mysql, redis)
}

/// Waits (`timeout` at most) until [`stocks`] are `expected`.
pub async fn wait_stocks(
    app: &TestApp,
    sale: u64,
    item: u64,
    expected: (i64, i64),
    timeout: Duration,
) {
    eventually(timeout, || async move {
        (stocks(app, sale, item).await == expected).then_some(())
    })
    .await;
}

impl TestApp {
    /// [`reserve_each`], then waits until MySQL holds every order; returns their ids.
    pub async fn persisted_reservations(
        &self,
        (sale, item): (u64, u64),
        prefix: &str,
        n: usize,
    ) -> Vec<String> {
        let ids = reserve_each(self, sale, item, prefix, n).await;
        wait_rows(self, item, n as i64).await;
        ids
    }
}

/// The names of the checks the first item of `report` fails.
pub fn failing_checks(report: &SaleReport) -> Vec<&str> {
    let checks = report.items[0].checks.iter();
    checks.filter(|c| !c.ok).map(|c| c.name.as_str()).collect()
}

/// The reconciliation report of the sale is clean.
pub async fn assert_clean(app: &TestApp, sale: u64) {
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
}
