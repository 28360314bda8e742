//! A message the consumer cannot parse goes to the dead-letter topic with the reason, and
//! consumption goes on.

use std::time::Duration;

use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};

use crate::support::{
    STACK, events, order_producer, produce_events, reader_config, spawn_app, wait_rows_exactly,
};

#[tokio::test]
async fn an_unparseable_message_goes_to_the_dead_letter_topic_and_consumption_goes_on() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let producer = order_producer(app.settings());
    producer.send("1", b"{not an event").await.unwrap();
    produce_events(app.settings(), &events(sale, item, 2, "ok")).await;
    wait_rows_exactly(app.db(), item, 2, Duration::from_secs(60)).await;
    let dlq: StreamConsumer = reader_config(&STACK.kafka_brokers, "dlq")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[&app.settings().kafka.dead_letter_topic])
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(60), dlq.recv())
        .await
        .expect("a dead letter")
        .unwrap();
    assert_eq!(msg.payload(), Some(&b"{not an event"[..]));
    let header = msg.headers().expect("headers").get(0);
    assert_eq!(header.key, "seckill-error");
}
