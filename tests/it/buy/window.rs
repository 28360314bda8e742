//! The sale window: no buy before it opens or after it ends, except a winner's retry with its
//! idempotency key, which gets the first answer.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn the_sale_window_is_enforced() {
    let app = spawn_app().await;
    let now = Utc::now();
    let (status, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(json!({
                "name": "later",
                "starts_at": (now + Duration::minutes(10)).to_rfc3339(),
                "ends_at": (now + Duration::minutes(20)).to_rfc3339(),
                "items": [{"sku": "a", "title": "A", "price_cents": 1, "stock": 5, "per_user_limit": 1}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (id, item) = (
        sale["id"].as_u64().unwrap(),
        sale["items"][0]["id"].as_u64().unwrap(),
    );
    let (s, err) = app.buy(id, item, "alice", 1, None).await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_started"))
    );

    // A sale whose end has passed (written straight to MySQL: the API refuses such windows).
    let (s2, i2) = app.create_live_sale(5, 1).await;
    sqlx::query("UPDATE sales SET ends_at = ? WHERE id = ?")
        .bind(now - Duration::seconds(1))
        .bind(s2)
        .execute(app.db())
        .await
        .unwrap();
    let (s, err) = app.buy(s2, i2, "alice", 1, None).await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::GONE, Some("ended")),
        "{err}"
    );
}

#[tokio::test]
async fn a_winner_retrying_after_the_end_gets_the_first_answer() {
    let app = spawn_app().await;
    let now = Utc::now();
    let (status, sale) = app
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(json!({
                "name": "short",
                "starts_at": (now - Duration::seconds(1)).to_rfc3339(),
                "ends_at": (now + Duration::seconds(3)).to_rfc3339(),
                "items": [{"sku": "a", "title": "A", "price_cents": 1, "stock": 5, "per_user_limit": 2}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let (id, item) = (
        sale["id"].as_u64().unwrap(),
        sale["items"][0]["id"].as_u64().unwrap(),
    );
    let (s, first) = app.buy(id, item, "late", 2, Some("k-late")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let left = (now + Duration::milliseconds(3_300)) - Utc::now();
    tokio::time::sleep(left.to_std().unwrap_or_default()).await;
    let (s, again) = app.buy(id, item, "late", 1, Some("k-late")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["order_id"], first["order_id"]);
    assert_eq!(
        again["quantity"], 2,
        "the first answer, not this request's quantity"
    );
    let (s, err) = app.buy(id, item, "late", 1, Some("k-new")).await;
    assert_eq!((s, err["code"].as_str()), (StatusCode::GONE, Some("ended")));
}
