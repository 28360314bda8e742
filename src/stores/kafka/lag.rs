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
pub(crate) struct PartitionLag {
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
pub(crate) struct LagProbe {
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

/// The group's total lag for watchers (the console's live view): asked at most once per
/// `every` however many watch, through one probe built on first use.
pub struct LagCache {
    endpoint: KafkaEndpoint,
    topic: String,
    group: String,
    every: Duration,
    state: tokio::sync::Mutex<CachedLag>,
}

#[derive(Default)]
struct CachedLag {
    probe: Option<std::sync::Arc<LagProbe>>,
    at: Option<std::time::Instant>,
    value: Option<i64>,
}

impl LagCache {
    /// A cache of `group`'s lag on `topic`, refreshed at most once per `every`.
    pub fn new(endpoint: KafkaEndpoint, topic: &str, group: &str, every: Duration) -> Self {
        Self {
            endpoint,
            topic: topic.to_string(),
            group: group.to_string(),
            every,
            state: tokio::sync::Mutex::new(CachedLag::default()),
        }
    }

    /// The total lag, or `None` when Kafka did not answer (logged at debug: the console shows
    /// the gap).
    pub async fn total(&self) -> Option<i64> {
        let mut state = self.state.lock().await;
        if state.at.is_some_and(|at| at.elapsed() < self.every) {
            return state.value;
        }
        let probe = match &state.probe {
            Some(p) => p.clone(),
            None => {
                let (endpoint, topic, group) = (
                    self.endpoint.clone(),
                    self.topic.clone(),
                    self.group.clone(),
                );
                let built = tokio::task::spawn_blocking(move || {
                    LagProbe::new(&endpoint, &topic, &group).map(std::sync::Arc::new)
                })
                .await;
                match built {
                    Ok(Ok(p)) => {
                        state.probe = Some(p.clone());
                        p
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error.message = %e, "lag probe could not be built");
                        return None;
                    }
                    Err(_) => return None,
                }
            }
        };
        let value = match tokio::task::spawn_blocking(move || probe.total()).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::debug!(error.message = %e, "consumer lag unavailable");
                None
            }
            Err(_) => None,
        };
        state.at = Some(std::time::Instant::now());
        state.value = value;
        value
    }
}
