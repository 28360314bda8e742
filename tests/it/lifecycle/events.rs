//! Lifecycle events on their Kafka topic: one per change, with its facts, and none twice.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    STACK, TestApp, cancel, eventually, lifecycle_app, pay, reader_config, sale_with_window, states,
};

#[tokio::test]
async fn each_change_reaches_the_topic_once_and_replays_add_nothing() {
    let app = lifecycle_app(None).await;
    let (sale, item) = sale_with_window(&app, 5, 1, 5).await;
    let ids = app.persisted_reservations((sale, item), "k", 3).await;
    let (s, body) = pay(&app, &ids[0], 1999, "ref-k0").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = cancel(&app, "k1", &ids[1]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 1);
    // The same changes again: answered as before, with nothing new to tell.
    let (s, body) = pay(&app, &ids[0], 1999, "ref-k0").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = cancel(&app, "k1", &ids[1]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 0);
    let st = states(&app, item).await;
    assert_eq!((st["paid"], st["cancelled"], st["expired"]), (1, 1, 1));

    wait_all_sent(&app, item, 3).await;
    let topic = app.settings().lifecycle.events_topic.clone();
    let events = tokio::task::spawn_blocking(move || whole_topic(&topic))
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        3,
        "one event per change, none twice: {events:#?}"
    );
    let expected = [
        (&ids[0], "order_paid", "k0"),
        (&ids[1], "order_cancelled", "k1"),
        (&ids[2], "order_expired", "k2"),
    ];
    for (id, kind, user) in expected {
        let (key, event) = events
            .iter()
            .find(|(_, e)| e["order_id"] == **id)
            .unwrap_or_else(|| panic!("no event of {id}: {events:#?}"));
        assert_eq!(key, &item.to_string(), "keyed by item: {event}");
        assert_eq!(event["type"], kind, "{event}");
        assert_eq!(
            (&event["schema"], &event["sale_id"], &event["item_id"]),
            (&json!(1), &json!(sale), &json!(item)),
            "{event}"
        );
        assert_eq!(
            (&event["user_id"], &event["quantity"]),
            (&json!(user), &json!(1))
        );
        assert!(event["at_ms"].as_i64().is_some_and(|t| t > 0), "{event}");
        let payment = if kind == "order_paid" {
            json!([1999, "ref-k0"])
        } else {
            json!([null, null])
        };
        assert_eq!(
            json!([event["amount_cents"], event["payment_ref"]]),
            payment,
            "only a payment carries its amount and reference: {event}"
        );
    }
}

/// Waits until the relay has sent `n` events of `item` and none is left.
async fn wait_all_sent(app: &TestApp, item: u64, n: i64) {
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move {
            let (all, sent): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COUNT(sent_at) FROM order_events WHERE item_id = ?",
            )
            .bind(item)
            .fetch_one(&db)
            .await
            .unwrap();
            (all == n && sent == n).then_some(())
        }
    })
    .await;
}

/// Every message of `topic` from its start to its end as of now: (key, JSON payload).
fn whole_topic(topic: &str) -> Vec<(String, Value)> {
    let reader: BaseConsumer = reader_config(&STACK.kafka_brokers, "events")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let wait = Duration::from_secs(10);
    let meta = reader.fetch_metadata(Some(topic), wait).unwrap();
    let mut ends = HashMap::new();
    let mut assigned = TopicPartitionList::new();
    for p in meta.topics()[0].partitions() {
        let (_, high) = reader.fetch_watermarks(topic, p.id(), wait).unwrap();
        if high > 0 {
            ends.insert(p.id(), high);
            assigned
                .add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    assert!(!ends.is_empty(), "nothing on {topic}");
    reader.assign(&assigned).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    let mut open = ends.clone();
    while !open.is_empty() {
        assert!(Instant::now() < deadline, "{topic} not read to {ends:?}");
        let Some(msg) = reader.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.unwrap();
        if msg.offset() >= ends[&msg.partition()] {
            continue;
        }
        let key = String::from_utf8_lossy(msg.key().unwrap_or_default()).to_string();
        out.push((key, serde_json::from_slice(msg.payload().unwrap()).unwrap()));
        if msg.offset() + 1 >= ends[&msg.partition()] {
            open.remove(&msg.partition());
        }
    }
    out
}
