//! The order consumer: Kafka -> MySQL under row locks, idempotent, batched. Its faults (killed
//! mid-batch, SIGTERM, MariaDB stopped, redelivery, unparseable messages) are in `faults`.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use seckill::domain::order_reserved::OrderReserved;
use serde_json::json;
use uuid::Uuid;

use crate::support::{
    STACK, as_buyer, events, eventually, item_ids, mysql_figures, produce_events, reserve_in_turn,
    sale_json, spawn_app, spawn_process, spawn_roles, test_settings, wait_all_orders, write_config,
};

#[tokio::test]
async fn reservations_become_persisted_orders() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let orders = reserve_in_turn(&app, (sale, item), "u", 4).await;
    eventually(Duration::from_secs(60), || async {
        (mysql_figures(app.db(), item).await == (4, 4, 6)).then_some(())
    })
    .await;
    let path = format!("/api/v1/orders/{}", orders[0]);
    let (_, body) = as_buyer(&app, Method::GET, "u0", &path).await;
    assert_eq!(body["status"], "pending_payment", "{body}");
    assert!(body["expires_at"].is_string(), "{body}");
    assert!(body["persisted_at"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn two_consumers_in_one_group_persist_every_order_once() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.kafka.partitions = 4;
    let app = spawn_roles(settings, false).await;
    // Several items, so keys spread over the partitions.
    let now = Utc::now();
    let items = (0..8).map(|i| json!({
        "sku": format!("s{i}"), "title": "t", "price_cents": 1, "stock": 1000, "per_user_limit": 1
    }));
    let body = sale_json(
        "many",
        now - chrono::Duration::seconds(1),
        now + chrono::Duration::minutes(30),
        items.collect(),
    );
    let (status, sale) = app.create_sale(body).await;
    assert_eq!(status, StatusCode::CREATED);
    let sale_id = sale["id"].as_u64().unwrap();
    let items = item_ids(&sale);
    let all: Vec<OrderReserved> = items
        .iter()
        .flat_map(|item| events(sale_id, *item, 100, "m"))
        .collect();
    let config = write_config(app.settings());
    let mut a = spawn_process("consume", &config);
    let mut b = spawn_process("consume", &config);
    produce_events(app.settings(), &all).await;
    wait_all_orders(app.db(), 800, Duration::from_secs(120)).await;
    for item in &items {
        assert_eq!(mysql_figures(app.db(), *item).await, (100, 100, 900));
    }
    a.kill().unwrap();
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
}

#[tokio::test]
async fn a_later_batch_sees_the_units_a_user_already_holds_in_mysql() {
    let app = spawn_roles(test_settings(&STACK.kafka_brokers).await, false).await;
    let (sale, item) = app.create_live_sale(10, 2).await;
    let first = vec![
        OrderReserved::new(Uuid::now_v7(), sale, item, "holder", 2, 1, 0),
        OrderReserved::new(Uuid::now_v7(), sale, item, "other", 1, 1, 0),
    ];
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &first)
        .await
        .unwrap();
    assert_eq!((out.persisted, out.rejected, out.duplicates), (2, 0, 0));
    let second = vec![
        OrderReserved::new(Uuid::now_v7(), sale, item, "holder", 1, 1, 0),
        OrderReserved::new(Uuid::now_v7(), sale, item, "other", 1, 1, 0),
        first[0].clone(),
    ];
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &second)
        .await
        .unwrap();
    assert_eq!((out.persisted, out.rejected, out.duplicates), (1, 1, 1));
    assert_eq!(mysql_figures(app.db(), item).await, (4, 4, 6));
}

#[tokio::test]
async fn user_ids_that_differ_only_in_case_or_accents_are_different_buyers() {
    let app = spawn_roles(test_settings(&STACK.kafka_brokers).await, false).await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let batch: Vec<OrderReserved> = ["Bob", "bob", "bób", "名前"]
        .iter()
        .map(|u| OrderReserved::new(Uuid::now_v7(), sale, item, u, 1, 1, 0))
        .collect();
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &batch)
        .await
        .unwrap();
    assert_eq!((out.persisted, out.rejected), (4, 0));
    let again = vec![OrderReserved::new(
        Uuid::now_v7(),
        sale,
        item,
        "bob",
        1,
        1,
        0,
    )];
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &again)
        .await
        .unwrap();
    assert_eq!(out.rejected, 1, "bob already holds his one unit");
}
