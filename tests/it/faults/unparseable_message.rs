//! A message the consumer cannot parse goes to the dead-letter topic with the reason, and
//! consumption goes on.

use std::time::Duration;

use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};

use crate::support::{STACK, events, eventually, mysql_figures, produce_events, spawn_app, unique};

#[tokio::test]
async fn an_unparseable_message_goes_to_the_dead_letter_topic_and_consumption_goes_on() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let endpoint = seckill::stores::kafka::KafkaEndpoint::from_bootstrap(&STACK.kafka_brokers);
    let producer = seckill::stores::kafka::producer::OrderProducer::new(
        &endpoint,
        &app.settings().kafka.topic,
        Duration::from_secs(30),
        Duration::from_millis(5),
    )
    .unwrap();
    producer.send("1", b"{not an event").await.unwrap();
    produce_events(app.settings(), &events(sale, item, 2, "ok")).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 2).then_some(()) }
    })
    .await;
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &STACK.kafka_brokers)
        .set("group.id", format!("dlq-{}", unique()))
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
