//! Consumer lag of a group on a topic: messages written but not yet committed by the group.

use std::time::Duration;

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaResult,
};

use super::KafkaEndpoint;

/// How long each metadata/offset request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sums, over the topic's partitions, the high watermark minus the group's committed offset
/// (or minus the low watermark where the group has committed nothing). Blocking: call from
/// `spawn_blocking`.
///
/// # Errors
/// The brokers did not answer.
pub fn consumer_lag(endpoint: &KafkaEndpoint, topic: &str, group: &str) -> KafkaResult<i64> {
    let consumer: BaseConsumer = endpoint
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition(topic, p.id());
        }
    }
    let committed = consumer.committed_offsets(tpl, TIMEOUT)?;
    let mut lag = 0;
    for e in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, e.partition(), TIMEOUT)?;
        let done = match e.offset() {
            Offset::Offset(n) => n,
            _ => low,
        };
        lag += (high - done).max(0);
    }
    Ok(lag)
}
