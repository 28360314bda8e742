//! SIGTERM during load: the service stops accepting, finishes its requests, flushes Kafka and
//! exits 0, losing no confirmed reservation; the consumer commits what it persisted and exits 0.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::support::{
    STACK, events, eventually, kill_child, member_config, mysql_figures, order_ids, produce_events,
    ready_child, send_signal, spawn_process, spawn_roles, test_settings, wait_rows_at_least,
    wait_rows_exactly, write_config,
};

#[tokio::test]
async fn sigterm_during_load_loses_no_confirmed_reservation() {
    let (settings, config, remote, mut child) = ready_child("all").await;
    let (sale_id, item, stampede) = remote.busy_sale(16, 200).await;
    send_signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "a graceful shutdown exits 0, got {status}"
    );
    let confirmed = stampede.finish().await;
    assert!(confirmed.len() >= 200);

    // What the shutdown itself flushed: nothing is left waiting for Kafka (a shutdown that
    // dropped its deliveries would leave them in the outbox for a relay to find later).
    let db = sqlx::MySqlPool::connect(settings.mysql.url.expose())
        .await
        .unwrap();
    let keys = crate::support::item_ref_in(&db, sale_id, item).await.keys(
        &seckill::stores::redis::keys::Keys::new(&settings.redis.key_prefix),
        seckill::stores::redis::keys::Holder::Whole,
    );
    let mut redis_conn = redis::Client::open(settings.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let waiting: u64 = redis::cmd("ZCARD")
        .arg(&keys.outbox)
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    assert_eq!(waiting, 0, "the graceful shutdown left reservations unsent");

    // And persistence completes with a consumer alone: no API, so no relay re-sends anything.
    let mut child = spawn_process("consume", &config);
    let expected = confirmed.len() as i64;
    wait_rows_at_least(&db, item, expected, Duration::from_secs(90)).await;
    let persisted = order_ids(&db, item).await.unwrap();
    let missing: Vec<_> = confirmed.difference(&persisted).take(5).collect();
    assert!(
        missing.is_empty(),
        "confirmed but not persisted: {missing:?}"
    );
    kill_child(&mut child);
}

#[tokio::test]
async fn a_consumer_sent_sigterm_commits_what_it_persisted_and_exits_cleanly() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.consumer.batch_max = 20;
    let app = spawn_roles(settings.clone(), false).await;
    let (sale, item) = app.create_live_sale(10_000, 1).await;
    produce_events(app.settings(), &events(sale, item, 4_000, "t")).await;
    let config = write_config(app.settings());
    let mut child = spawn_process("consume", &config);
    wait_rows_at_least(app.db(), item, 1, Duration::from_secs(90)).await;
    send_signal(child.id(), "TERM");
    let status = eventually(Duration::from_secs(60), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    let persisted = mysql_figures(app.db(), item).await.0;
    assert!(persisted < 4_000, "stopped mid-stream ({persisted} rows)");

    // What it persisted is exactly what its group committed: one message per order.
    let reader: BaseConsumer = member_config(&STACK.kafka_brokers, &settings.kafka.group_id)
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in 0..settings.kafka.partitions as i32 {
        partitions.add_partition(&settings.kafka.topic, p);
    }
    let committed: i64 = reader
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum();
    drop(reader);
    assert_eq!(
        committed, persisted,
        "committed offsets cover exactly the persisted orders"
    );

    // A new member takes over from the commit and finishes the stream, nothing twice.
    let mut child = spawn_process("consume", &config);
    wait_rows_exactly(app.db(), item, 4_000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mysql_figures(app.db(), item).await, (4_000, 4_000, 6_000));
    kill_child(&mut child);
}
