//! Kafka: events produced straight to an app's topic (as the outbox would), the order ids a
//! topic holds, and a reader in a group of its own.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
};
use seckill::{
    config::Settings,
    domain::order_reserved::OrderReserved,
    stores::kafka::{KafkaEndpoint, producer::OrderProducer},
};

use super::unique;

/// A producer to the app's orders topic, as the outbox's.
pub fn order_producer(settings: &Settings) -> OrderProducer {
    let endpoint = KafkaEndpoint::from_bootstrap(&settings.kafka.brokers);
    let (timeout, linger) = (Duration::from_secs(30), Duration::from_millis(5));
    OrderProducer::new(&endpoint, &settings.kafka.topic, timeout, linger).unwrap()
}

/// Produces events straight to the app's orders topic (as the outbox would).
pub async fn produce_events(
    settings: &Settings,
    events: &[seckill::domain::order_reserved::OrderReserved],
) {
    let producer = order_producer(settings);
    let sends = events
        .iter()
        .map(|e| {
            let producer = producer.clone();
            let payload = e.to_bytes();
            let key = e.key();
            async move { producer.send(&key, &payload).await }
        })
        .collect::<Vec<_>>();
    for r in futures::future::join_all(sends).await {
        r.expect("event produced");
    }
}

/// `n` reservations of one unit of `item`, by users `user_prefix0..`.
pub fn events(sale: u64, item: u64, n: usize, user_prefix: &str) -> Vec<OrderReserved> {
    (0..n)
        .map(|i| {
            let user = format!("{user_prefix}{i}");
            OrderReserved::new(
                seckill::domain::order_id::fresh(item, &user),
                sale,
                item,
                &user,
                1,
                1999,
                Utc::now().timestamp_millis(),
            )
        })
        .collect()
}

/// Reads the topic from the start until every id of `expected` was seen; returns all ids seen.
pub async fn order_ids_in_topic(
    brokers: &str,
    topic: &str,
    expected: &HashSet<String>,
) -> HashSet<String> {
    let consumer: StreamConsumer = reader_config(brokers, "reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !expected.is_subset(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "missing from Kafka: {:?}",
            expected.difference(&seen).take(5).collect::<Vec<_>>()
        );
        if let Ok(Ok(msg)) =
            tokio::time::timeout(left.min(Duration::from_secs(5)), consumer.recv()).await
            && let Ok(event) = OrderReserved::parse(msg.payload().unwrap_or_default())
        {
            seen.insert(event.order_id.to_string());
        }
    }
    seen
}

/// A client of `brokers` in the consumer group `group`.
pub fn member_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group);
    config
}

/// A client of `brokers` in a group of its own, named `prefix-…`.
pub fn reader_config(brokers: &str, prefix: &str) -> ClientConfig {
    member_config(brokers, &format!("{prefix}-{}", unique()))
}
