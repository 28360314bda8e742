//! Consumer lag of a group on a topic: messages written but not yet committed by the group,
//! per partition and in total.

use std::time::Duration;

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaResult,
};

use super::KafkaEndpoint;

/// How long each metadata/offset request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the group stands on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// Partition number.
    pub partition: i32,
    /// The group's committed offset, or the low watermark where it has committed nothing.
    pub committed: i64,
    /// The high watermark: the offset the next message will get.
    pub high: i64,
}

impl PartitionLag {
    /// Messages written but not committed.
    pub fn lag(&self) -> i64 {
        (self.high - self.committed).max(0)
    }
}

/// A client that reads a group's committed offsets and the topic's watermarks, built once and
/// reused (building a client per probe costs a connection and a metadata round trip each).
/// It never joins the group. Blocking: call from `spawn_blocking`.
pub struct LagProbe {
    consumer: BaseConsumer,
    topic: String,
}

impl LagProbe {
    /// A probe of `group` on `topic`.
    ///
    /// # Errors
    /// librdkafka refused the configuration.
    pub fn new(endpoint: &KafkaEndpoint, topic: &str, group: &str) -> KafkaResult<Self> {
        let consumer = endpoint
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer,
            topic: topic.to_string(),
        })
    }

    /// Committed offset and high watermark of every partition of the topic.
    ///
    /// # Errors
    /// The brokers did not answer.
    pub fn partitions(&self) -> KafkaResult<Vec<PartitionLag>> {
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), TIMEOUT)?;
        let mut tpl = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition(&self.topic, p.id());
            }
        }
        let committed = self.consumer.committed_offsets(tpl, TIMEOUT)?;
        let mut out = Vec::with_capacity(committed.count());
        for e in committed.elements() {
            let (low, high) =
                self.consumer
                    .fetch_watermarks(&self.topic, e.partition(), TIMEOUT)?;
            let committed = match e.offset() {
                Offset::Offset(n) => n,
                _ => low,
            };
            out.push(PartitionLag {
                partition: e.partition(),
                committed,
                high,
            });
        }
        out.sort_by_key(|p| p.partition);
        Ok(out)
    }

    /// The lag summed over the topic's partitions.
    ///
    /// # Errors
    /// The brokers did not answer.
    pub fn total(&self) -> KafkaResult<i64> {
        Ok(self.partitions()?.iter().map(PartitionLag::lag).sum())
    }
}

/// Sums, over the topic's partitions, the high watermark minus the group's committed offset
/// (or minus the low watermark where the group has committed nothing), with a client built for
/// this one call. Blocking: call from `spawn_blocking`.
///
/// # Errors
/// The brokers did not answer.
pub fn consumer_lag(endpoint: &KafkaEndpoint, topic: &str, group: &str) -> KafkaResult<i64> {
    LagProbe::new(endpoint, topic, group)?.total()
}
