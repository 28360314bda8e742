//! The order consumer: Kafka -> MySQL, at least once, made exactly once in effect by the
//! `order_id` primary key.
//!
//! Invariant: an offset is committed only after the MySQL transaction holding its orders has
//! committed. Messages are gathered into batches (up to `batch_max` or `batch_wait_ms`), so a
//! hot item takes its row lock once per batch. A batch that fails (MySQL down, deadlock) is
//! retried with backoff and nothing is committed meanwhile; a message that can never be parsed
//! goes to the dead-letter topic first and only then is its offset committed.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rdkafka::{
    ClientContext, Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::KafkaResult,
    message::OwnedMessage,
};
use sqlx::MySqlPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Settings,
    kafka::{KafkaEndpoint, events::OrderReserved, producer::OrderProducer},
    metrics::Metrics,
    store::orders::{self, BatchOutcome},
};

/// First wait after a failed batch; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between retries of a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Logs rebalances and commits, the two events an operator needs at 3 a.m.
pub struct LoggingContext;

impl ClientContext for LoggingContext {}

impl ConsumerContext for LoggingContext {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = ?partitions(tpl), "partitions revoked")
            }
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = ?partitions(tpl), "partitions assigned")
            }
            Rebalance::Error(e) => tracing::warn!(error.message = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(error.message = %e, offsets = ?partitions(offsets), "offset commit failed; the batch will be redelivered and deduplicated");
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// A consumer-group member persisting `OrderReserved` events.
pub struct OrderConsumer {
    consumer: StreamConsumer<LoggingContext>,
    db: MySqlPool,
    producer: OrderProducer,
    dead_letter_topic: String,
    batch_max: usize,
    batch_wait: Duration,
    metrics: Arc<Metrics>,
}

impl OrderConsumer {
    /// Joins the configured group and subscribes to the orders topic.
    ///
    /// # Errors
    /// librdkafka refused the configuration or the subscription.
    pub fn new(
        settings: &Settings,
        endpoint: &KafkaEndpoint,
        db: MySqlPool,
        producer: OrderProducer,
        metrics: Arc<Metrics>,
    ) -> KafkaResult<Self> {
        let consumer: StreamConsumer<LoggingContext> = endpoint
            .client_config()
            .set("group.id", &settings.kafka.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "50")
            .create_with_context(LoggingContext)?;
        consumer.subscribe(&[&settings.kafka.topic])?;
        Ok(Self {
            consumer,
            db,
            producer,
            dead_letter_topic: settings.kafka.dead_letter_topic.clone(),
            batch_max: usize::try_from(settings.consumer.batch_max).unwrap_or(usize::MAX),
            batch_wait: Duration::from_millis(settings.consumer.batch_wait_ms),
            metrics,
        })
    }

    /// Consumes until `shutdown`: gather, persist, dead-letter, commit. On shutdown a batch in
    /// progress is finished if MySQL answers, otherwise abandoned uncommitted (it will be
    /// redelivered); then the member leaves the group.
    ///
    /// # Errors
    /// Only on unrecoverable consumer errors; MySQL outages are waited out.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!("order consumer started");
        let mut committed: HashMap<(String, i32), i64> = HashMap::new();
        while let Some(batch) = self.gather(&shutdown).await {
            match self.handle(&batch, &shutdown).await {
                Some(offsets) => committed.extend(offsets),
                None => {
                    tracing::warn!(
                        messages = batch.len(),
                        "shutdown during retries: batch abandoned uncommitted; it will be redelivered"
                    );
                    break;
                }
            }
        }
        // Commits so far were asynchronous: make sure the persisted ones are on the broker
        // before leaving the group.
        let mut tpl = TopicPartitionList::new();
        let owned = self.consumer.assignment().unwrap_or_default();
        for ((topic, partition), offset) in &committed {
            if owned.find_partition(topic, *partition).is_some() {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
            }
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync)
        {
            tracing::warn!(error.message = %e, "final offset commit failed; the last batches will be redelivered and deduplicated");
        }
        self.consumer.unsubscribe();
        tracing::info!("order consumer stopped");
        Ok(())
    }

    /// Waits for a first message, then gathers more until the batch is full or the wait is over.
    async fn gather(&self, shutdown: &CancellationToken) -> Option<Vec<OwnedMessage>> {
        let first = loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                msg = self.consumer.recv() => match msg {
                    Ok(m) => break m.detach(),
                    Err(e) => {
                        tracing::warn!(error.message = %e, "Kafka receive error");
                        tokio::time::sleep(FIRST_BACKOFF).await;
                    }
                },
            }
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + self.batch_wait;
        while batch.len() < self.batch_max {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                msg = self.consumer.recv() => match msg {
                    Ok(m) => batch.push(m.detach()),
                    Err(e) => {
                        tracing::warn!(error.message = %e, "Kafka receive error");
                        break;
                    }
                },
            }
        }
        Some(batch)
    }

    /// Persists, dead-letters and commits one batch; returns the offsets committed, or `None`
    /// when shutdown interrupted it.
    async fn handle(
        &self,
        batch: &[OwnedMessage],
        shutdown: &CancellationToken,
    ) -> Option<Vec<((String, i32), i64)>> {
        let mut events = Vec::with_capacity(batch.len());
        let mut poison = Vec::new();
        for msg in batch {
            match OrderReserved::parse(msg.payload().unwrap_or_default()) {
                Ok(e) => events.push(e),
                Err(e) => poison.push((msg, e.to_string())),
            }
        }
        let mut backoff = FIRST_BACKOFF;
        let outcome = loop {
            let started = std::time::Instant::now();
            match orders::persist_batch(&self.db, &events).await {
                Ok(outcome) => {
                    self.metrics
                        .consumer_persist_latency
                        .observe(started.elapsed().as_secs_f64());
                    break outcome;
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, messages = events.len(), retry_in = ?backoff, "persisting a batch failed; nothing committed, retrying");
                    if !sleep_or_stop(backoff, shutdown).await {
                        return None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        self.record(&outcome, events.len());
        for (msg, reason) in poison {
            let mut backoff = FIRST_BACKOFF;
            loop {
                match self
                    .producer
                    .send_dead_letter(
                        &self.dead_letter_topic,
                        msg.key(),
                        msg.payload().unwrap_or_default(),
                        &reason,
                    )
                    .await
                {
                    Ok(()) => {
                        tracing::error!(partition = msg.partition(), offset = msg.offset(), %reason, "unparseable message sent to the dead-letter topic");
                        self.metrics
                            .consumer_orders
                            .with_label_values(&["dead_letter"])
                            .inc();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error.message = %e, "dead-letter send failed; retrying before committing");
                        if !sleep_or_stop(backoff, shutdown).await {
                            return None;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
        Some(self.commit(batch))
    }

    fn record(&self, outcome: &BatchOutcome, size: usize) {
        self.metrics.consumer_batch_size.observe(size as f64);
        let m = &self.metrics.consumer_orders;
        m.with_label_values(&["persisted"])
            .inc_by(outcome.persisted);
        m.with_label_values(&["rejected"]).inc_by(outcome.rejected);
        m.with_label_values(&["duplicate"])
            .inc_by(outcome.duplicates);
        tracing::debug!(
            size,
            persisted = outcome.persisted,
            rejected = outcome.rejected,
            duplicates = outcome.duplicates,
            "batch persisted"
        );
    }

    /// Commits the next offset of each partition in the batch that this member still owns;
    /// returns what it committed.
    fn commit(&self, batch: &[OwnedMessage]) -> Vec<((String, i32), i64)> {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for m in batch {
            let slot = next.entry((m.topic(), m.partition())).or_insert(0);
            *slot = (*slot).max(m.offset() + 1);
        }
        let owned = self.consumer.assignment().unwrap_or_default();
        let mut tpl = TopicPartitionList::new();
        let mut done = Vec::new();
        for ((topic, partition), offset) in next {
            if owned.find_partition(topic, partition).is_none() {
                tracing::info!(
                    partition,
                    "partition no longer ours; not committing (the new owner redelivers, deduplicated)"
                );
                continue;
            }
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(error.message = %e, "bad offset");
                continue;
            }
            done.push(((topic.to_string(), partition), offset));
        }
        if tpl.count() == 0 {
            return done;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error.message = %e, "offset commit failed; the batch will be redelivered and deduplicated");
        }
        done
    }
}

async fn sleep_or_stop(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}
