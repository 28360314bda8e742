//! The local stack's servers answer, and we can write and read each one.

use std::time::Duration;

use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use redis::AsyncCommands;
use seckill::stores::kafka::KafkaEndpoint;
use sqlx::{Connection, MySqlConnection};

use crate::support::{STACK, fresh_database, stack_redis, unique};

#[tokio::test]
async fn redis_accepts_a_write_and_reads_it_back() {
    let pool = stack_redis(1).await;
    let key = format!("t{}:smoke", unique());
    let mut conn = pool.get();
    let _: () = conn.set_ex(&key, "hello", 60).await.unwrap();
    let got: String = conn.get(&key).await.unwrap();
    assert_eq!(got, "hello");
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(policy[1], "noeviction", "stock keys must never be evicted");
}

#[tokio::test]
async fn mariadb_accepts_a_write_and_reads_it_back() {
    let url = fresh_database().await;
    let mut conn = MySqlConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1, 'hello')")
        .execute(&mut conn)
        .await
        .unwrap();
    let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, "hello");
}

#[tokio::test]
async fn the_kafka_broker_accepts_a_message_and_delivers_it_to_a_group() {
    let topic = format!("smoke-{}", unique());
    let endpoint = KafkaEndpoint::from_bootstrap(&STACK.kafka_brokers);
    endpoint.ensure_topics(&[(topic.clone(), 1)]).await.unwrap();
    let producer: FutureProducer = endpoint
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload("hello"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &STACK.kafka_brokers)
        .set("group.id", format!("g-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .expect("a message within 60 s")
        .unwrap();
    assert_eq!(msg.payload(), Some(&b"hello"[..]));
}
