//! Sales: the body of a live one-item sale, created through the admin API, and the ids it answers.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

impl TestApp {
    /// Creates a one-item sale that started a second ago and runs 30 minutes.
    pub async fn create_live_sale(&self, stock: i64, per_user_limit: i64) -> (u64, u64) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/sales",
                Some(live_sale_body(stock, per_user_limit)),
            )
            .await;
        sale_and_item(status, &body)
    }
}

/// The body of a one-item sale that started a second ago and runs 30 minutes.
pub fn live_sale_body(stock: i64, per_user_limit: i64) -> Value {
    let now = chrono::Utc::now();
    json!({
        "name": "test sale",
        "starts_at": (now - chrono::Duration::seconds(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::minutes(30)).to_rfc3339(),
        "items": [{"sku": "sku-1", "title": "Item", "price_cents": 1999,
                   "stock": stock, "per_user_limit": per_user_limit}],
    })
}

pub(crate) fn sale_and_item(status: StatusCode, body: &Value) -> (u64, u64) {
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "warmed", "{body}");
    first_item(body)
}

/// A one-item sale that started a second ago, with a payment window of `window_secs`.
pub async fn sale_with_window(
    app: &TestApp,
    stock: i64,
    limit: i64,
    window_secs: i64,
) -> (u64, u64) {
    let mut body = live_sale_body(stock, limit);
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

/// The body of a sale named `name` from `starts_at` to `ends_at`, with `items`.
pub fn sale_json(
    name: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
    ends_at: chrono::DateTime<chrono::Utc>,
    items: Value,
) -> Value {
    json!({
        "name": name,
        "starts_at": starts_at.to_rfc3339(),
        "ends_at": ends_at.to_rfc3339(),
        "items": items,
    })
}

/// The ids of a created sale's items, in order.
pub fn item_ids(sale: &Value) -> Vec<u64> {
    let items = sale["items"].as_array().unwrap();
    items.iter().map(|i| i["id"].as_u64().unwrap()).collect()
}

/// One item of a sale's body.
pub fn item_json(sku: &str, title: &str, price_cents: i64, stock: i64, limit: i64) -> Value {
    json!({"sku": sku, "title": title, "price_cents": price_cents, "stock": stock,
           "per_user_limit": limit})
}

/// The ids of a created sale and of its first item.
pub fn first_item(sale: &Value) -> (u64, u64) {
    (
        sale["id"].as_u64().unwrap(),
        sale["items"][0]["id"].as_u64().unwrap(),
    )
}
