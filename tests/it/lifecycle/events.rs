//! Lifecycle events on their Kafka topic.

use std::{collections::HashMap, time::Duration};

use serde_json::Value;

use super::{app, cancel, pay, reserve_each, sale, wait_rows};
use crate::helpers::{STACK, unique};

#[tokio::test]
async fn lifecycle_events_reach_their_topic() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 5, 1, 5).await;
    let ids = reserve_each(&app, sale, item, "k", 3).await;
    wait_rows(&app, item, 3).await;
    pay(&app, &ids[0], 1999, "ref-k0").await;
    cancel(&app, "k1", &ids[1]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.services.lifecycle.expire_once().await.unwrap();

    use rdkafka::{
        ClientConfig, Message,
        consumer::{Consumer, StreamConsumer},
    };
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &STACK.kafka_brokers)
        .set("group.id", format!("events-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader
        .subscribe(&[&app.settings().lifecycle.events_topic])
        .unwrap();
    let mut kinds = HashMap::new();
    while kinds.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(60), reader.recv())
            .await
            .expect("three lifecycle events within 60 s")
            .unwrap();
        let event: Value = serde_json::from_slice(msg.payload().unwrap()).unwrap();
        let id = event["order_id"].as_str().unwrap().to_string();
        if ids.contains(&id) {
            kinds.insert(id, event["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(kinds[&ids[0]], "order_paid");
    assert_eq!(kinds[&ids[1]], "order_cancelled");
    assert_eq!(kinds[&ids[2]], "order_expired");
}
