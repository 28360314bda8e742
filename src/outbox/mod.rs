//! Delivery of reservations from the Redis ledger (the outbox) to Kafka.
//!
//! The buy path answers as soon as the Lua script has written the reservation to the ledger and
//! the outbox set; it does not wait for Kafka. Delivery happens in the background: an order
//! leaves the outbox set only after the broker's ack. The relay re-emits entries that stayed
//! unacknowledged too long (service killed between deduct and ack, Kafka down), so a confirmed
//! reservation survives a SIGKILL of the service. Duplicates are harmless: the consumer skips
//! order ids it already stored. The ledger itself is never trimmed; it expires with the sale
//! plus the grace period.

mod pipeline;

use std::{sync::Arc, time::Duration, time::Instant};

use chrono::Utc;
use redis::AsyncCommands;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::{RelaySettings, SaleSettings},
    observe::metrics::Metrics,
    stock::{
        StockService,
        ledger::{ItemLedger, field_text, parse_order_id},
    },
    stores::{
        kafka::producer::OrderProducer,
        mysql::sales::{self, LiveItem},
        redis::lock::LeaderElection,
    },
};

/// Most outbox entries re-emitted per item per relay pass.
const RELAY_BATCH: isize = 500;

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Items scanned.
    pub items: u64,
    /// Entries re-emitted and acknowledged.
    pub relayed: u64,
    /// Entries whose re-emission failed (left for the next pass).
    pub failed: u64,
    /// Entries still unacknowledged after the pass (all ages).
    pub backlog: u64,
    /// Entries held back because too few replicas acknowledged them (`replica` mode).
    pub unreplicated: u64,
    /// Age of the oldest entry still waiting after the pass, in milliseconds (0: none).
    pub oldest_age_ms: u64,
}

/// A reservation the broker did not acknowledge in time; it stays in the outbox for the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Kafka did not acknowledge the order in time")]
pub struct Unacknowledged;

/// Hands reservations to Kafka and marks them delivered.
#[derive(Clone)]
pub struct Outbox {
    producer: OrderProducer,
    stock: StockService,
    metrics: Arc<Metrics>,
    pipeline: pipeline::Pipeline,
}

impl Outbox {
    /// An outbox over `stock`'s Redis, delivering with `producer`.
    ///
    /// Must be called inside a Tokio runtime: it starts the delivery pipeline's task.
    pub fn new(producer: OrderProducer, stock: StockService, metrics: Arc<Metrics>) -> Self {
        let pipeline = pipeline::Pipeline::start(stock.clone(), metrics.clone(), producer.clone());
        Self {
            producer,
            stock,
            metrics,
            pipeline,
        }
    }

    /// The producer (the consumer's dead-letter path and repair reuse it).
    pub fn producer(&self) -> &OrderProducer {
        &self.producer
    }

    /// Starts delivering one fresh reservation in the background: the message is queued in
    /// the producer and the pipeline marks it delivered on the broker's ack, batching the
    /// Redis writes. If it cannot even be queued, it stays in the outbox for the relay.
    pub fn publish(&self, sale_id: u64, item_id: u64, order_id: Uuid, payload: &[u8]) {
        match self.producer.enqueue(&item_id.to_string(), payload) {
            Ok(queued) => self.pipeline.track(sale_id, item_id, order_id, queued),
            Err(e) => {
                self.metrics.kafka_produce_errors.inc();
                tracing::warn!(%order_id, item_id, error.message = %e, "order not queued for Kafka; the outbox relay will send it");
            }
        }
    }

    /// Queues one fresh reservation and waits up to `timeout` for the broker's ack (the
    /// `kafka` confirmation mode). Past the timeout the delivery goes on in the background and,
    /// as always, the outbox keeps the reservation until it is acknowledged.
    ///
    /// # Errors
    /// Not acknowledged within `timeout` (or refused).
    pub async fn publish_and_wait(
        &self,
        sale_id: u64,
        item_id: u64,
        order_id: Uuid,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), Unacknowledged> {
        let started = Instant::now();
        let mut queued = self
            .producer
            .enqueue(&item_id.to_string(), payload)
            .map_err(|e| {
                self.metrics.kafka_produce_errors.inc();
                tracing::debug!(%order_id, error.message = %e, "order not queued for Kafka");
                Unacknowledged
            })?;
        self.metrics.kafka_in_flight.inc();
        let waited = tokio::time::timeout(timeout, &mut queued.delivery).await;
        self.metrics.kafka_in_flight.dec();
        match waited {
            Ok(Ok(Ok(_))) => {
                self.metrics
                    .kafka_produce_latency
                    .observe(started.elapsed().as_secs_f64());
                self.pipeline.acked(sale_id, item_id, order_id);
                Ok(())
            }
            Ok(Ok(Err((e, _)))) => {
                self.metrics.kafka_produce_errors.inc();
                self.producer.recover_from(queued.generation, &e);
                Err(Unacknowledged)
            }
            Ok(Err(_)) => Err(Unacknowledged),
            Err(_) => {
                // Still on its way: the pipeline records the ack if it comes.
                self.pipeline.track(sale_id, item_id, order_id, queued);
                Err(Unacknowledged)
            }
        }
    }

    /// Sends an existing ledger entry again and waits up to `timeout` for the ack: a replayed
    /// buy in the `kafka` confirmation mode is confirmed only once its order is in Kafka (its
    /// first attempt may have timed out before the ack). The consumer dedupes the copy.
    ///
    /// # Errors
    /// The entry is gone, or it was not acknowledged in time.
    pub async fn redeliver_and_wait(
        &self,
        sale_id: u64,
        item_id: u64,
        order_id: Uuid,
        timeout: Duration,
    ) -> Result<(), Unacknowledged> {
        let keys = self.stock.keys().item(sale_id, item_id);
        let mut conn = self.stock.redis().get();
        let ledger = ItemLedger::open(&mut conn, keys, sale_id, item_id)
            .await
            .map_err(|_| Unacknowledged)?;
        let payload = ledger
            .payloads(&mut conn, &[order_id])
            .await
            .map_err(|_| Unacknowledged)?
            .pop()
            .flatten()
            .ok_or(Unacknowledged)?;
        tokio::time::timeout(timeout, self.deliver(sale_id, item_id, order_id, &payload))
            .await
            .map_err(|_| Unacknowledged)?
            .map_err(|_| Unacknowledged)
    }

    /// Sends one ledger entry and, on the broker's ack, removes it from the outbox set.
    ///
    /// # Errors
    /// Kafka did not acknowledge, or Redis failed to record the ack (the entry will be sent
    /// again; the consumer dedupes).
    pub async fn deliver(
        &self,
        sale_id: u64,
        item_id: u64,
        order_id: Uuid,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        self.metrics.kafka_in_flight.inc();
        let sent = self.producer.send(&item_id.to_string(), payload).await;
        self.metrics.kafka_in_flight.dec();
        if let Err(e) = sent {
            self.metrics.kafka_produce_errors.inc();
            return Err(e.into());
        }
        self.metrics
            .kafka_produce_latency
            .observe(started.elapsed().as_secs_f64());
        let keys = self.stock.keys().item(sale_id, item_id);
        let mut conn = self.stock.redis().get();
        let _: i64 = redis::cmd("ZREM")
            .arg(&keys.outbox)
            .arg(order_id.as_bytes())
            .arg(order_id.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Re-emits, for each item, outbox entries older than `older_than`.
    ///
    /// # Errors
    /// Redis failed while scanning.
    pub async fn relay_once(
        &self,
        items: &[LiveItem],
        older_than: Duration,
    ) -> anyhow::Result<RelayReport> {
        let mut report = RelayReport::default();
        let cutoff = Utc::now().timestamp_millis() - older_than.as_millis() as i64;
        for item in items {
            report.items += 1;
            let keys = self.stock.keys().item(item.sale_id, item.item_id);
            let mut conn = self.stock.redis().get();
            let mut stale: Vec<Vec<u8>> = conn
                .zrangebyscore_limit(&keys.outbox, "-inf", cutoff, 0, RELAY_BATCH)
                .await?;
            // In `replica` mode an entry goes to Kafka only once replicas hold it: one the
            // master lost in a failover must leave nothing in Kafka that MySQL would count.
            if !stale.is_empty() && !self.stock.replicated(item.sale_id, item.item_id).await? {
                report.unreplicated += stale.len() as u64;
                stale.clear();
            }
            if !stale.is_empty() {
                let mut ids = Vec::with_capacity(stale.len());
                for member in &stale {
                    match parse_order_id(member) {
                        Some(id) => ids.push(id),
                        None => {
                            tracing::error!(order_id = %field_text(member), "outbox holds a malformed order id; left for a human");
                            report.failed += 1;
                        }
                    }
                }
                let ledger =
                    ItemLedger::open(&mut conn, keys.clone(), item.sale_id, item.item_id).await?;
                let payloads = ledger.payloads(&mut conn, &ids).await?;
                let mut sends = Vec::with_capacity(ids.len());
                for (order_id, payload) in ids.into_iter().zip(payloads) {
                    let Some(payload) = payload else {
                        tracing::error!(%order_id, item_id = item.item_id, "outbox entry without a ledger entry; left for reconciliation");
                        report.failed += 1;
                        continue;
                    };
                    sends.push(async move {
                        let result = self
                            .deliver(item.sale_id, item.item_id, order_id, &payload)
                            .await;
                        (order_id, result)
                    });
                }
                // Concurrently: with Kafka down each send waits out the message timeout.
                let mut first_error = None;
                let mut failed = 0;
                for (order_id, result) in futures::future::join_all(sends).await {
                    match result {
                        Ok(()) => {
                            report.relayed += 1;
                            self.metrics.outbox_relayed.inc();
                        }
                        Err(e) => {
                            failed += 1;
                            tracing::debug!(%order_id, error.message = %e, "relay could not deliver");
                            first_error.get_or_insert(e);
                        }
                    }
                }
                if let Some(e) = first_error {
                    report.failed += failed;
                    tracing::warn!(item_id = item.item_id, failed, error.message = %e, "relay could not deliver these orders; the next pass retries them");
                }
            }
            let backlog: u64 = conn.zcard(&keys.outbox).await?;
            report.backlog += backlog;
            if backlog > 0 {
                let oldest: Vec<(Vec<u8>, i64)> =
                    conn.zrange_withscores(&keys.outbox, 0, 0).await?;
                if let Some((_, at_ms)) = oldest.first() {
                    let age = Utc::now().timestamp_millis().saturating_sub(*at_ms).max(0) as u64;
                    report.oldest_age_ms = report.oldest_age_ms.max(age);
                }
            }
        }
        self.metrics.outbox_backlog.set(report.backlog as i64);
        self.metrics
            .outbox_oldest_age
            .set((report.oldest_age_ms / 1000) as i64);
        Ok(report)
    }

    /// Runs the relay every `relay.interval_ms` while this instance holds the relay lock,
    /// until `shutdown`.
    pub async fn run_relay(
        self,
        db: MySqlPool,
        relay: RelaySettings,
        sale: SaleSettings,
        mut leader: LeaderElection,
        shutdown: CancellationToken,
    ) {
        let interval = Duration::from_millis(relay.interval_ms);
        let older_than = Duration::from_millis(relay.redeliver_after_ms);
        while leader.next_turn(interval, &shutdown).await {
            let since = Utc::now() - chrono::Duration::seconds(sale.grace_secs as i64);
            let items = match sales::live_items(&db, since).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error.message = %e, "relay could not list live items");
                    continue;
                }
            };
            match self.relay_once(&items, older_than).await {
                Ok(r) if r.relayed > 0 || r.failed > 0 || r.unreplicated > 0 => {
                    tracing::info!(
                        relayed = r.relayed,
                        failed = r.failed,
                        held_until_replicated = r.unreplicated,
                        backlog = r.backlog,
                        "outbox relay pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error.message = %e, "outbox relay pass failed"),
            }
        }
        leader.step_down().await;
    }

    /// Waits for background deliveries to be acknowledged and recorded (up to `timeout`),
    /// then flushes the producer. Reservations published afterwards stay for the relay.
    pub async fn drain(&self, timeout: Duration) {
        self.pipeline.stop(timeout).await;
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }
}
