//! The outbox's producer: a session it suspects is replaced and delivery goes on. The loss tests
//! (the service killed mid-stampede, the broker down during buys) are in `faults`.

use std::{collections::HashSet, time::Duration};

use seckill::domain::order_reserved::OrderReserved;

use crate::support::{STACK, order_ids_in_topic, test_settings};

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
