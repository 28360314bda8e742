//! The order consumer: Kafka -> MySQL, at least once, made exactly once in effect by the
//! `order_id` primary key.
//!
//! Invariant: an offset is committed only after the MySQL transaction holding its orders has
//! committed. Messages are gathered into batches (up to `batch_max` or `batch_wait_ms`), so a
//! hot item takes its row lock once per batch. A batch that fails (MySQL down, deadlock) is
//! retried with backoff and nothing is committed meanwhile; a message that can never be parsed
//! goes to the dead-letter topic first and only then is its offset committed.

pub(crate) mod assignment;
mod batch;
pub mod health;
pub(crate) mod watchdog;

use std::{collections::HashMap, sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::KafkaResult,
    message::OwnedMessage,
};
use sqlx::MySqlPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Settings,
    observe::{
        log::{REPEAT_EVERY, Throttle},
        metrics::Metrics,
    },
    stores::{
        kafka::{KafkaEndpoint, lag::LagProbe, producer::OrderProducer},
        mysql,
    },
};

use assignment::GroupContext;
pub use health::ConsumerHealth;
use watchdog::Watchdog;

/// First wait after a failed batch; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between retries of a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the group's lag is read for the watchdog, the gauge and `/readyz`.
const LAG_EVERY: Duration = Duration::from_secs(2);
/// How long a member may go without a heartbeat before the coordinator drops it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Offsets committed so far, per (topic, partition): the next offset to read.
type Committed = HashMap<(String, i32), i64>;

/// What the wait for the next batch ended with.
enum Next {
    /// Messages to persist.
    Batch(Vec<OwnedMessage>),
    /// Nothing arrived for a while: time to look at the group's progress.
    Idle,
    /// Shutdown.
    Stop,
}

/// A consumer-group member persisting `OrderReserved` events.
pub(crate) struct OrderConsumer {
    consumer: StreamConsumer<GroupContext>,
    config: ClientConfig,
    topic: String,
    endpoint: KafkaEndpoint,
    group: String,
    health: ConsumerHealth,
    watchdog: Option<Watchdog>,
    /// Receive errors repeat many times a second while the broker is down.
    throttle: Throttle,
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
        health: ConsumerHealth,
    ) -> KafkaResult<Self> {
        let mut config = endpoint.client_config();
        config
            .set("group.id", &settings.kafka.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                SESSION_TIMEOUT.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "50");
        let consumer = subscribe(&config, &settings.kafka.topic, &health)?;
        let stall = settings.consumer.stall_rejoin_secs;
        Ok(Self {
            consumer,
            config,
            topic: settings.kafka.topic.clone(),
            endpoint: endpoint.clone(),
            group: settings.kafka.group_id.clone(),
            health,
            watchdog: (stall > 0).then(|| Watchdog::new(Duration::from_secs(stall))),
            throttle: Throttle::default(),
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
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(group = %self.group, topic = %self.topic, "order consumer started");
        let monitor = match LagProbe::new(&self.endpoint, &self.topic, &self.group) {
            Ok(probe) => Some(tokio::spawn(self.health.clone().monitor(
                probe,
                LAG_EVERY,
                shutdown.clone(),
            ))),
            Err(e) => {
                tracing::warn!(error.message = %e, "no lag probe: the stall watchdog and the lag gauge are off");
                None
            }
        };
        let mut committed = Committed::new();
        let mut last_check = Instant::now();
        loop {
            match self.next(&shutdown).await {
                Next::Stop => break,
                Next::Idle => {}
                Next::Batch(batch) => match self.handle(&batch, &shutdown).await {
                    Some(offsets) => committed.extend(offsets),
                    None => {
                        tracing::warn!(
                            messages = batch.len(),
                            "shutdown during retries: batch abandoned uncommitted; it will be redelivered"
                        );
                        break;
                    }
                },
            }
            if last_check.elapsed() >= LAG_EVERY {
                last_check = Instant::now();
                self.watch(&mut committed).await;
            }
        }
        // Commits so far were asynchronous: make sure the persisted ones are on the broker
        // before leaving the group.
        self.commit_sync(&committed);
        self.consumer.unsubscribe();
        if let Some(m) = monitor {
            m.abort();
        }
        tracing::info!("order consumer stopped");
        Ok(())
    }

    /// Commits, synchronously, what was persisted on the partitions this member still owns.
    fn commit_sync(&self, committed: &Committed) {
        let mut tpl = TopicPartitionList::new();
        let owned = self.consumer.assignment().unwrap_or_default();
        for ((topic, partition), offset) in committed {
            if owned.find_partition(topic, *partition).is_some() {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
            }
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync)
        {
            tracing::warn!(error.message = %e, "offset commit failed; the last batches will be redelivered and deduplicated");
        }
    }

    /// Looks at the group's progress and leaves and rejoins the group when partitions this
    /// member does not hold have stalled (see [`watchdog`]).
    async fn watch(&mut self, committed: &mut Committed) {
        let Some(watchdog) = self.watchdog.as_mut() else {
            return;
        };
        let Some(reading) = self.health.latest_lag() else {
            return;
        };
        watchdog.observe(&reading.partitions, reading.at);
        let owned = self.health.assignment().owned();
        let Some(stalled) = watchdog.should_rejoin(&reading.partitions, &owned, reading.at) else {
            return;
        };
        if let Err(e) = mysql::ping(&self.db).await {
            tracing::warn!(error.message = %e, "partitions stalled, but MySQL does not answer either; staying in the group");
            return;
        }
        tracing::warn!(
            stalled = ?stalled,
            owned = ?owned,
            "partitions with waiting orders are consumed by nobody; leaving the group and joining again so that the coordinator assigns them"
        );
        self.metrics.consumer.rejoins.inc();
        self.commit_sync(committed);
        committed.clear();
        if let Err(e) = self.rejoin().await {
            tracing::error!(error.message = %e, "rejoining the group failed; retrying at the next check");
        }
    }

    /// Closes this member (librdkafka sends LeaveGroup and waits for it) and only then joins
    /// with a fresh one: a join while the old member still counts would make it the leader the
    /// new member waits for.
    async fn rejoin(&mut self) -> KafkaResult<()> {
        // Created without a subscription, so it does not join before the old member has left.
        let fresh: StreamConsumer<GroupContext> = self
            .config
            .create_with_context(GroupContext::new(self.health.assignment().clone()))?;
        let old = std::mem::replace(&mut self.consumer, fresh);
        let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        self.health.assignment().set(Default::default());
        self.consumer.subscribe(&[&self.topic])?;
        tracing::info!("left the group; joining again");
        Ok(())
    }

    /// Waits for a first message, then gathers more until the batch is full or the wait is
    /// over. Returns [`Next::Idle`] when nothing came for a while, never in the middle of a
    /// batch (a batch dropped half-gathered would lose messages later offsets commit past).
    async fn next(&self, shutdown: &CancellationToken) -> Next {
        let idle = tokio::time::sleep(LAG_EVERY);
        tokio::pin!(idle);
        let first = loop {
            tokio::select! {
                () = shutdown.cancelled() => return Next::Stop,
                () = &mut idle => return Next::Idle,
                msg = self.consumer.recv() => match msg {
                    Ok(m) => break m.detach(),
                    Err(e) => {
                        self.receive_error(&e);
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
                        self.receive_error(&e);
                        break;
                    }
                },
            }
        }
        Next::Batch(batch)
    }

    fn receive_error(&self, e: &rdkafka::error::KafkaError) {
        if let Some(held) = self.throttle.allow("receive", REPEAT_EVERY) {
            tracing::warn!(error.message = %e, repeats_since_last = held, "Kafka receive error; retrying");
        }
    }
}

/// A new member of the group in `config`, subscribed to `topic`, recording its assignment in
/// `health`.
fn subscribe(
    config: &ClientConfig,
    topic: &str,
    health: &ConsumerHealth,
) -> KafkaResult<StreamConsumer<GroupContext>> {
    let consumer: StreamConsumer<GroupContext> =
        config.create_with_context(GroupContext::new(health.assignment().clone()))?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}
