//! A started sale whose Redis state is lost is rebuilt from MySQL, never warmed afresh; a sale
//! never uses Redis state that belongs to another sale.

use std::time::Duration;

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};

use crate::helpers::{STACK, TestApp, eventually, spawn_with, test_settings};

/// Every key of the item gone, as after Redis restarted without its data.
/// Every key of the item goes (the buckets of a v5 ledger too), as in a real loss.
async fn lose_state(app: &TestApp, sale: u64, item: u64) {
    let keys = app.keys().item(sale, item);
    let base = keys.stock.strip_suffix(":stock").unwrap();
    let mut conn = app.redis().get();
    let all: Vec<String> = conn.keys(format!("{base}:*")).await.unwrap();
    assert!(
        all.len() >= 3,
        "the item had stock, meta and a bucket: {all:?}"
    );
    let _: () = conn.del(&all).await.unwrap();
}

async fn wait_persisted(app: &TestApp, item: u64, rows: i64) {
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
                .bind(item)
                .fetch_one(&db)
                .await
                .unwrap();
            (n >= rows).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn prewarm_of_a_started_sale_with_lost_state_rebuilds_it_from_mysql() {
    let app = spawn_with(test_settings(&STACK.kafka_brokers).await).await;
    let (sale, item) = app.create_live_sale(10, 2).await;
    let (s, first) = app.buy(sale, item, "a", 2, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, keyed) = app.buy(sale, item, "b", 1, Some("key-b")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{keyed}");
    wait_persisted(&app, item, 2).await;

    lose_state(&app, sale, item).await;
    let (status, report) = app
        .admin(
            Method::POST,
            &format!("/admin/v1/sales/{sale}/prewarm"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["items"][0]["outcome"], "recovered", "{report}");
    assert_eq!(
        report["items"][0]["remaining"], 7,
        "MySQL's remaining units, not the initial 10: {report}"
    );
    // The buyers' units and idempotency keys came back with it.
    let (s, body) = app.buy(sale, item, "a", 1, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "limit_exceeded");
    let (s, replay) = app.buy(sale, item, "b", 1, Some("key-b")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{replay}");
    assert_eq!(
        replay["order_id"], keyed["order_id"],
        "the first order again"
    );
    let (s, _) = app.buy(sale, item, "c", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_persisted(&app, item, 3).await;
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
}

#[tokio::test]
async fn a_buy_that_finds_the_state_lost_starts_a_recovery_and_reconciliation_reports_it() {
    let app = spawn_with(test_settings(&STACK.kafka_brokers).await).await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    for u in 0..3 {
        let (s, body) = app.buy(sale, item, &format!("u{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    }
    wait_persisted(&app, item, 3).await;
    lose_state(&app, sale, item).await;

    // Reconciliation never calls a lost state "ok".
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(!report.ok);
    let failing: Vec<&str> = report.items[0]
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failing, ["redis_state_present"], "{}", report.to_table());

    let (s, body) = app.buy(sale, item, "late", 1, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "recovering");
    // Rebuilt in the background: the two units left sell, and no more.
    let sold: Vec<StatusCode> = eventually(Duration::from_secs(60), || async {
        let (s, _) = app.buy(sale, item, "x0", 1, None).await;
        (s != StatusCode::SERVICE_UNAVAILABLE).then_some(vec![s])
    })
    .await;
    assert_eq!(sold, [StatusCode::ACCEPTED]);
    let (s, _) = app.buy(sale, item, "x1", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, body) = app.buy(sale, item, "x2", 1, None).await;
    assert_eq!(body["code"], "sold_out", "{s} {body}");
    let (s, body) = app.buy(sale, item, "u0", 1, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    wait_persisted(&app, item, 5).await;
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
}

#[tokio::test]
async fn a_sale_refuses_the_redis_state_of_another_sale_with_the_same_id() {
    // Two databases (a second environment, a restored backup), one Redis and key prefix: both
    // create their first sale, so both have sale 1 and item 1.
    let first = test_settings(&STACK.kafka_brokers).await;
    let mut second = test_settings(&STACK.kafka_brokers).await;
    second.redis.key_prefix = first.redis.key_prefix.clone();
    let a = spawn_with(first).await;
    let b = spawn_with(second).await;
    let (sale_a, item_a) = a.create_live_sale(10, 1).await;
    let (status, body) = b
        .admin(
            Method::POST,
            "/admin/v1/sales",
            Some(crate::helpers::live_sale_body(500, 1)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale_b, item_b) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    assert_eq!((sale_a, item_a), (sale_b, item_b), "the same ids");
    assert_ne!(
        body["status"], "warmed",
        "B's prewarm refused A's state: {body}"
    );
    let (status, body) = b
        .admin(
            Method::POST,
            &format!("/admin/v1/sales/{sale_b}/prewarm"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "foreign_state");

    // B's buyers are refused and nothing of A's changes; A sells as before.
    let (s, body) = b.buy(sale_b, item_b, "bob", 1, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "foreign_state");
    let keys = a.keys().item(sale_a, item_a);
    let stock: i64 = a.redis().get().get(&keys.stock).await.unwrap();
    assert_eq!(stock, 10);
    let (s, _) = a.buy(sale_a, item_a, "alice", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // B's reconciliation names the problem instead of comparing A's data with B's.
    let report = b.services.reconciler.run_once(sale_b, false).await.unwrap();
    let failing: Vec<&str> = report.items[0]
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failing, ["redis_state_identity"], "{}", report.to_table());
}
