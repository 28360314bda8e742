//! The sale window: no buy before it opens or after it ends, except a winner's retry with its
//! idempotency key, which gets the first answer.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, first_item, item_json, sale_json, spawn_app};

/// Creates a sale named `name` open from `window.0` to `window.1`, of one item of 5 units and
/// a limit of `limit`; returns (sale, item).
async fn one_item_sale(
    app: &TestApp,
    name: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    limit: i64,
) -> (u64, u64) {
    let items = json!([item_json("a", "A", 1, 5, limit)]);
    let (status, sale) = app
        .create_sale(sale_json(name, window.0, window.1, items))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    first_item(&sale)
}

#[tokio::test]
async fn the_sale_window_is_enforced() {
    let app = spawn_app().await;
    let now = Utc::now();
    let later = (now + Duration::minutes(10), now + Duration::minutes(20));
    let (id, item) = one_item_sale(&app, "later", later, 1).await;
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
    let short = (now - Duration::seconds(1), now + Duration::seconds(3));
    let (id, item) = one_item_sale(&app, "short", short, 2).await;
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
