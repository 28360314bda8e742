//! Another sale's Redis state under the same ids (a second environment, a restored backup): refused
//! by prewarm and buys, reported by reconciliation, never mixed.

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{STACK, failing_checks, live_sale_body, spawn_with, test_settings};

#[tokio::test]
async fn a_create_that_would_meet_another_sales_state_answers_409_and_writes_nothing() {
    // Two databases (a second environment, a restored backup), one Redis and key prefix: both
    // would give their first sale the ids 1 and 1.
    let first = test_settings(&STACK.kafka_brokers).await;
    let mut second = test_settings(&STACK.kafka_brokers).await;
    second.redis.key_prefix = first.redis.key_prefix.clone();
    let a = spawn_with(first).await;
    let b = spawn_with(second).await;
    let (sale_a, item_a) = a.create_live_sale(10, 1).await;

    let (status, body) = b.create_sale(live_sale_body(500, 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "foreign_state", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("item {item_a}")),
        "names the item: {body}"
    );
    let (status, listed) = b.admin_get("/admin/v1/sales").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["total"], 0,
        "nothing written in B's database: {listed}"
    );
    let keys = a.keys().item(sale_a, item_a);
    let stock: i64 = a.redis().get().get(&keys.stock).await.unwrap();
    assert_eq!(stock, 10, "A's state untouched");

    // B's next sale takes the next ids, which meet nothing, and sells.
    let (sale_b, item_b) = b.create_live_sale(500, 1).await;
    assert_ne!(sale_b, sale_a);
    let (s, body) = b.buy(sale_b, item_b, "bob", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let (s, _) = a.buy(sale_a, item_a, "alice", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_sale_refuses_the_redis_state_of_another_sale_with_the_same_id() {
    // As above, but B's sale starts after its prewarm lead, so its create warms nothing and
    // checks nothing: the clash shows at the prewarm and the buys.
    let first = test_settings(&STACK.kafka_brokers).await;
    let mut second = test_settings(&STACK.kafka_brokers).await;
    second.redis.key_prefix = first.redis.key_prefix.clone();
    second.sale.prewarm_lead_secs = 1;
    let a = spawn_with(first).await;
    let b = spawn_with(second).await;
    let (sale_a, item_a) = a.create_live_sale(10, 1).await;
    let starts_in = chrono::Duration::seconds(3);
    let mut later = live_sale_body(500, 1);
    later["starts_at"] = json!((chrono::Utc::now() + starts_in).to_rfc3339());
    let (status, body) = b.create_sale(later).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale_b, item_b) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    assert_eq!((sale_a, item_a), (sale_b, item_b), "the same ids");
    assert_ne!(body["status"], "warmed", "{body}");
    let (status, body) = b.prewarm(sale_b).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "foreign_state");

    // Once B's sale has started, its buyers are refused and nothing of A's changes; A sells as
    // before.
    tokio::time::sleep(starts_in.to_std().unwrap()).await;
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
    let failing = failing_checks(&report);
    assert_eq!(failing, ["redis_state_identity"], "{}", report.to_table());
}
