//! The loadtest's client-side verification: the stores compared with what the client was
//! confirmed, drift found, and retried buys that reserve with their idempotency keys.

use std::time::Duration;

use super::run_on;
use crate::support::{ADMIN_TOKEN, app_with_user_bucket, overwrite_stock, spawn_app};

#[tokio::test]
async fn verify_fails_when_the_stores_disagree() {
    let app = spawn_app().await;
    let line = "--create-sale --stock 5 --users 20 --concurrency 4 --requests 40";
    let summary = run_on(&app, line, &[]).await;
    let (sale, item) = (summary.sale_id.unwrap(), summary.item_id.unwrap());
    // Drift: the Redis stock key no longer balances with the ledger.
    overwrite_stock(&app, sale, item, 3).await;
    let (s, i) = (sale.to_string(), item.to_string());
    let line = format!("--sale {s} --item {i} --users 20 --concurrency 2 --requests 4 --verify");
    let again = run_on(&app, &line, &[]).await;
    assert!(!again.passed());
    let v = again.verification.unwrap();
    assert!(!v.ok);
    assert!(
        v.problems.iter().any(|p| p.contains("stock_balance")),
        "{v:?}"
    );
}

#[tokio::test]
async fn retried_rate_limited_buys_still_reserve_with_their_idempotency_keys() {
    let app = app_with_user_bucket(2, 1).await;
    // 8 users, 3 units each at most, 40 buys: each user's bucket refuses most first tries.
    let (sale, item) = app.create_live_sale(100, 3).await;
    let (s, i) = (sale.to_string(), item.to_string());
    let line = format!(
        "--sale {s} --item {i} --users 8 --concurrency 8 --requests 40 --retry-on 429 \
         --idempotency-keys --verify --drain-timeout 60s"
    );
    let summary = run_on(&app, &line, &[]).await;
    let text = summary.render();
    assert!(summary.retries.retries > 0, "{text}");
    assert_eq!(summary.retries.retries, summary.retries.by_status[&429]);
    assert!(
        summary.outcomes.reserved >= 16,
        "retries got through: {text}"
    );
    assert!(text.contains("retries     "), "{text}");
    assert!(summary.verification.as_ref().unwrap().ok, "{text}");
    // The server received the keys: every persisted order carries one, all different; nobody
    // holds more than the limit; MySQL has exactly what the client was confirmed.
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT user_id, COUNT(*), COUNT(DISTINCT idempotency_key), \
         CAST(SUM(idempotency_key IS NULL) AS SIGNED) FROM orders WHERE item_id = ? GROUP BY user_id",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap();
    let total: i64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(total as u64, summary.outcomes.reserved, "{rows:?}");
    for (user, orders, keys, without) in &rows {
        assert!(
            *orders <= 3,
            "{user} holds {orders} orders, above the limit of 3"
        );
        assert_eq!((keys, without), (orders, &0), "{user}: one key per order");
    }
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM orders WHERE item_id = ? LIMIT 1")
            .bind(item)
            .fetch_all(app.db())
            .await
            .unwrap();
    assert!(keys[0].starts_with("lt-"), "{keys:?}");
}

#[tokio::test]
async fn verify_compares_the_stores_with_what_the_client_was_confirmed() {
    let app = spawn_app().await;
    let line = "--create-sale --stock 5 --users 20 --concurrency 4 --requests 40 --verify \
                --drain-timeout 60s";
    let summary = run_on(&app, line, &[]).await;
    let v = summary.verification.as_ref().unwrap();
    assert!(v.ok, "{}", summary.render());
    assert_eq!(summary.order_ids.len(), 5);
    let (sale, item) = (summary.sale_id.unwrap(), summary.item_id.unwrap());
    let client = loadtest::ClientTally {
        item_id: item,
        confirmed: summary.outcomes.reserved,
        order_ids: Some(summary.order_ids.clone()),
        unknown_fate: summary.unknown_fate,
        only_client: true,
    };
    // One of the orders confirmed to the client disappears from MySQL.
    let gone = sqlx::query("DELETE FROM orders WHERE order_id = UNHEX(REPLACE(?, '-', ''))")
        .bind(&summary.order_ids[0])
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(gone.rows_affected(), 1);
    let http = reqwest::Client::new();
    let (v, _) = loadtest::verify::verify_sale(
        &http,
        &app.admin_base,
        &ADMIN_TOKEN,
        sale,
        &client,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert!(!v.ok);
    assert!(
        v.problems.iter().any(|p| p.contains(&format!(
            "item {item}: 5 reservations confirmed to this client but MySQL holds 4 units (4 persisted + 0 released): 1 missing"
        ))),
        "{v:?}"
    );
}
