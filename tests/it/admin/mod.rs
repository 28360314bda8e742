//! The admin API: create, show, list, change and warm sales.

mod create;
mod patch;
mod prewarm;
mod scripts;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

fn sale_body(starts_in: Duration, lasts: Duration) -> Value {
    let now = Utc::now();
    json!({
        "name": "Singles' Day",
        "starts_at": (now + starts_in).to_rfc3339(),
        "ends_at": (now + starts_in + lasts).to_rfc3339(),
        "items": [
            {"sku": "phone", "title": "Phone", "price_cents": 99900, "stock": 100, "per_user_limit": 2},
            {"sku": "case", "title": "Case", "price_cents": 1500, "stock": 5000, "per_user_limit": 5}
        ]
    })
}

/// Creates the sale of [`sale_body`] through the admin API: status and body.
async fn create(app: &TestApp, starts_in: Duration, lasts: Duration) -> (StatusCode, Value) {
    app.create_sale(sale_body(starts_in, lasts)).await
}

/// Every key of a sale (not the instance-wide Bloom filter or locks) under the app's prefix.
async fn keys_of(app: &TestApp) -> Vec<String> {
    all_keys_of(app)
        .await
        .into_iter()
        .filter(|k| !k.contains(":lock:") && *k != app.keys().sale_bloom())
        .collect()
}

/// Every key under the app's prefix.
async fn all_keys_of(app: &TestApp) -> Vec<String> {
    let mut conn = app.redis().get();
    let pattern = format!("{}*", app.keys().prefix());
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        all.extend(batch);
        if next == 0 {
            return all;
        }
        cursor = next;
    }
}

async fn sale_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sales")
        .fetch_one(app.db())
        .await
        .unwrap()
}
