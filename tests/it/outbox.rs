//! No confirmed reservation is lost: the service killed mid-stampede, Kafka down during buys.

use std::{collections::HashSet, time::Duration};

use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
};
use redis::AsyncCommands;
use reqwest::StatusCode;
use seckill::domain::order_reserved::OrderReserved;

use crate::helpers::{
    PrivateServer, Remote, STACK, eventually, spawn_process, spawn_roles, test_settings, unique,
    write_config,
};

/// Reads the topic from the start until every id of `expected` was seen; returns all ids seen.
async fn order_ids_in_topic(
    brokers: &str,
    topic: &str,
    expected: &HashSet<String>,
) -> HashSet<String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", unique()))
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

#[tokio::test]
async fn a_service_killed_mid_stampede_still_delivers_every_confirmed_reservation() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    crate::processes::fixed_ports(&mut settings);
    let config = write_config(&settings);
    let remote = Remote::at(&settings);
    let _http = remote.http.clone();
    let mut child = spawn_process("serve", &config);
    remote.wait_ready().await;
    let (sale_id, item) = remote.create_live_sale(100_000, 1).await;
    let stampede = remote.stampede(sale_id, item, 32);
    stampede.confirmed_at_least(300).await;
    child.kill().expect("SIGKILL while buys are in flight");
    child.wait().unwrap();
    let confirmed = stampede.finish().await;

    // Restart: the relay re-emits whatever the dead process had not delivered.
    let mut child = spawn_process("serve", &config);
    remote.wait_ready().await;
    let seen = order_ids_in_topic(&settings.kafka.brokers, &settings.kafka.topic, &confirmed).await;
    assert!(confirmed.is_subset(&seen));
    // Nothing in Kafka that Redis does not know: every id sent is in the ledger.
    let redis = seckill::stores::redis::RedisPool::connect(&settings.redis)
        .await
        .unwrap();
    let keys = seckill::stores::redis::keys::Keys::new(&settings.redis.key_prefix);
    let ledger: HashSet<String> = crate::helpers::redis_ledger(&redis, &keys, sale_id, item)
        .await
        .events
        .keys()
        .map(ToString::to_string)
        .collect();
    assert!(
        seen.is_subset(&ledger),
        "every delivered order is a ledger entry"
    );
    assert!(confirmed.is_subset(&ledger));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn buys_during_a_kafka_outage_are_confirmed_and_drain_when_it_returns() {
    let kafka = PrivateServer::start("kafka");
    let brokers = format!("127.0.0.1:{}", kafka.port);
    let mut settings = test_settings(&brokers).await;
    settings.kafka.message_timeout_ms = 2_000;
    let app = spawn_roles(settings, false).await;
    let (sale, item) = app.create_live_sale(1_000, 1).await;
    let mut confirmed = HashSet::new();
    for u in 0..20 {
        let (s, body) = app.buy(sale, item, &format!("before-{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        confirmed.insert(body["order_id"].as_str().unwrap().to_string());
    }
    kafka.stop();
    for u in 0..20 {
        let (s, body) = app.buy(sale, item, &format!("during-{u}"), 1, None).await;
        assert_eq!(
            s,
            StatusCode::ACCEPTED,
            "buys keep being confirmed from the ledger: {body}"
        );
        confirmed.insert(body["order_id"].as_str().unwrap().to_string());
    }
    // The API stays in the load balancer: the outbox holds the reservations meanwhile.
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "Kafka down does not make the API unready"
    );
    let keys = app.keys().item(sale, item);
    let waiting: u64 = app.redis().get().zcard(&keys.outbox).await.unwrap();
    assert!(
        waiting >= 20,
        "undelivered reservations wait in the outbox ({waiting})"
    );
    // What an operator sees meanwhile: failed deliveries and a backlog in the outbox.
    let metrics = app.services.metrics.clone();
    eventually(Duration::from_secs(30), || {
        let m = metrics.clone();
        async move {
            (m.kafka.produce_errors.get() >= 20 && m.outbox.backlog.get() >= 20).then_some(())
        }
    })
    .await;
    kafka.run("start");
    let seen = order_ids_in_topic(&brokers, &app.settings().kafka.topic, &confirmed).await;
    assert!(confirmed.is_subset(&seen));
    let redis = app.redis().clone();
    eventually(Duration::from_secs(60), || {
        let redis = redis.clone();
        let outbox = keys.outbox.clone();
        async move {
            let n: u64 = redis.get().zcard(&outbox).await.unwrap();
            (n == 0).then_some(())
        }
    })
    .await;
    eventually(Duration::from_secs(30), || {
        let m = metrics.clone();
        async move { (m.outbox.backlog.get() == 0).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_producer_with_a_suspect_session_is_replaced_and_keeps_delivering() {
    use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};
    use seckill::stores::kafka::producer::{OrderProducer, RESET_AT_MOST_EVERY};
    let settings = test_settings(&STACK.kafka_brokers).await;
    let endpoint = seckill::stores::kafka::KafkaEndpoint::from_bootstrap(&settings.kafka.brokers);
    endpoint
        .ensure_topics(&[(settings.kafka.topic.clone(), 1)])
        .await
        .unwrap();
    let producer = OrderProducer::new(
        &endpoint,
        &settings.kafka.topic,
        Duration::from_secs(10),
        Duration::from_millis(5),
    )
    .unwrap();
    producer.send("k", b"before").await.unwrap();
    let first = producer.generation();
    // The broker merely unreachable, or the queue full: nothing to replace.
    for harmless in [
        RDKafkaErrorCode::AllBrokersDown,
        RDKafkaErrorCode::QueueFull,
    ] {
        assert!(!producer.recover_from(first, &KafkaError::MessageProduction(harmless)));
    }
    assert_eq!(producer.generation(), first);
    // Timed-out messages: the session is suspect, so the producer is replaced once; more
    // failures of the retired producer do not replace its successor.
    let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
    assert!(producer.recover_from(first, &timed_out));
    let second = producer.generation();
    assert_ne!(second, first);
    assert!(!producer.recover_from(first, &timed_out), "already retired");
    // A broker error from the new producer right away: replacements are spaced.
    let broken = KafkaError::MessageProduction(RDKafkaErrorCode::Unknown);
    assert!(
        !producer.recover_from(second, &broken),
        "replacements are spaced"
    );
    tokio::time::sleep(RESET_AT_MOST_EVERY).await;
    assert!(producer.recover_from(second, &broken));
    assert_ne!(producer.generation(), second);

    let mut expected = HashSet::new();
    let e = OrderReserved::new(uuid::Uuid::now_v7(), 1, 1, "u", 1, 1, 0);
    producer.send(&e.key(), &e.to_bytes()).await.unwrap();
    expected.insert(e.order_id.to_string());
    let seen = order_ids_in_topic(&settings.kafka.brokers, &settings.kafka.topic, &expected).await;
    assert!(expected.is_subset(&seen));
}
