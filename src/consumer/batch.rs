//! One batch of the consumer: parse, persist in MySQL (retried until it lands), dead-letter what
//! cannot be parsed, then commit the offsets.

use std::{collections::HashMap, time::Duration};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer},
    message::OwnedMessage,
};
use tokio_util::sync::CancellationToken;

use super::{FIRST_BACKOFF, MAX_BACKOFF, OrderConsumer};
use crate::{
    domain::order_reserved::OrderReserved,
    stores::mysql::orders::{self, BatchOutcome},
};

/// A message that cannot be parsed, with the reason.
type Poison<'m> = (&'m OwnedMessage, String);

impl OrderConsumer {
    /// Persists, dead-letters and commits one batch; returns the offsets committed, or `None`
    /// when shutdown interrupted it.
    pub(super) async fn handle(
        &self,
        batch: &[OwnedMessage],
        shutdown: &CancellationToken,
    ) -> Option<Vec<((String, i32), i64)>> {
        let (events, poison) = parse(batch);
        let outcome = self.persist(&events, shutdown).await?;
        self.record(&outcome, events.len());
        for (msg, reason) in poison {
            self.dead_letter(msg, &reason, shutdown).await?;
        }
        // Orders are in MySQL; offsets are not committed yet (a crash here redelivers the
        // batch, and MySQL deduplicates it).
        crate::observe::failpoint::pause_if_armed("consumer.after_mysql_commit").await;
        Some(self.commit(batch))
    }

    /// Persists `events` in one transaction, retrying with backoff while MySQL fails; `None`
    /// when shutdown came first.
    async fn persist(
        &self,
        events: &[OrderReserved],
        shutdown: &CancellationToken,
    ) -> Option<BatchOutcome> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = std::time::Instant::now();
            match orders::persist_batch(&self.db, events).await {
                Ok(outcome) => {
                    self.metrics
                        .consumer
                        .persist_latency
                        .observe(started.elapsed().as_secs_f64());
                    return Some(outcome);
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, messages = events.len(), retry_in = ?backoff, "persisting a batch failed; nothing committed, retrying");
                    if !sleep_or_stop(backoff, shutdown).await {
                        return None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Sends `msg` to the dead-letter topic with `reason`, retrying with backoff until the
    /// broker takes it; `None` when shutdown came first.
    async fn dead_letter(
        &self,
        msg: &OwnedMessage,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> Option<()> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self
                .producer
                .send_dead_letter(
                    &self.dead_letter_topic,
                    msg.key(),
                    msg.payload().unwrap_or_default(),
                    reason,
                )
                .await
            {
                Ok(()) => {
                    tracing::error!(partition = msg.partition(), offset = msg.offset(), %reason, "unparseable message sent to the dead-letter topic");
                    self.metrics
                        .consumer
                        .orders
                        .with_label_values(&["dead_letter"])
                        .inc();
                    return Some(());
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

    fn record(&self, outcome: &BatchOutcome, size: usize) {
        self.metrics.consumer.batch_size.observe(size as f64);
        let m = &self.metrics.consumer.orders;
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

/// The batch's events, and the messages that are not events with the reason.
fn parse(batch: &[OwnedMessage]) -> (Vec<OrderReserved>, Vec<Poison<'_>>) {
    let mut events = Vec::with_capacity(batch.len());
    let mut poison = Vec::new();
    for msg in batch {
        match OrderReserved::parse(msg.payload().unwrap_or_default()) {
            Ok(e) => events.push(e),
            Err(e) => poison.push((msg, e.to_string())),
        }
    }
    (events, poison)
}

async fn sleep_or_stop(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}
