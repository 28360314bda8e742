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
mod relay;

use std::{sync::Arc, time::Duration, time::Instant};

use uuid::Uuid;

use crate::{
    observe::metrics::Metrics,
    stock::{ItemRef, StockService, ledger::ItemLedger},
    stores::kafka::producer::OrderProducer,
};

pub use relay::RelayReport;

/// A reservation the broker did not acknowledge in time; it stays in the outbox for the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Kafka did not acknowledge the order in time")]
pub(crate) struct Unacknowledged;

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
    pub(crate) fn publish(&self, item: ItemRef, order_id: Uuid, payload: &[u8]) {
        let item_id = item.item_id;
        match self.producer.enqueue(&item_id.to_string(), payload) {
            Ok(queued) => self.pipeline.track(item, order_id, queued),
            Err(e) => {
                self.metrics.kafka.produce_errors.inc();
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
    pub(crate) async fn publish_and_wait(
        &self,
        item: ItemRef,
        order_id: Uuid,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), Unacknowledged> {
        let started = Instant::now();
        let mut queued = self
            .producer
            .enqueue(&item.item_id.to_string(), payload)
            .map_err(|e| {
                self.metrics.kafka.produce_errors.inc();
                tracing::debug!(%order_id, error.message = %e, "order not queued for Kafka");
                Unacknowledged
            })?;
        self.metrics.kafka.in_flight.inc();
        let waited = tokio::time::timeout(timeout, &mut queued.delivery).await;
        self.metrics.kafka.in_flight.dec();
        match waited {
            Ok(Ok(Ok(_))) => {
                self.metrics
                    .kafka
                    .produce_latency
                    .observe(started.elapsed().as_secs_f64());
                self.pipeline.acked(item, order_id);
                Ok(())
            }
            Ok(Ok(Err((e, _)))) => {
                self.metrics.kafka.produce_errors.inc();
                self.producer.recover_from(queued.generation, &e);
                Err(Unacknowledged)
            }
            Ok(Err(_)) => Err(Unacknowledged),
            Err(_) => {
                // Still on its way: the pipeline records the ack if it comes.
                self.pipeline.track(item, order_id, queued);
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
    pub(crate) async fn redeliver_and_wait(
        &self,
        item: ItemRef,
        order_id: Uuid,
        timeout: Duration,
    ) -> Result<(), Unacknowledged> {
        let keys = item.order_keys(self.stock.keys(), &order_id);
        let mut conn = self.stock.redis().get();
        let ledger = ItemLedger::open(&mut conn, keys, item.sale_id, item.item_id)
            .await
            .map_err(|_| Unacknowledged)?;
        let payload = ledger
            .payloads(&mut conn, &[order_id])
            .await
            .map_err(|_| Unacknowledged)?
            .pop()
            .flatten()
            .ok_or(Unacknowledged)?;
        tokio::time::timeout(timeout, self.deliver(item, order_id, &payload))
            .await
            .map_err(|_| Unacknowledged)?
            .map_err(|_| Unacknowledged)
    }

    /// Sends one ledger entry and, on the broker's ack, removes it from the outbox set.
    ///
    /// # Errors
    /// Kafka did not acknowledge, or Redis failed to record the ack (the entry will be sent
    /// again; the consumer dedupes).
    pub(crate) async fn deliver(
        &self,
        item: ItemRef,
        order_id: Uuid,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        self.metrics.kafka.in_flight.inc();
        let sent = self.producer.send(&item.item_id.to_string(), payload).await;
        self.metrics.kafka.in_flight.dec();
        if let Err(e) = sent {
            self.metrics.kafka.produce_errors.inc();
            return Err(e.into());
        }
        self.metrics
            .kafka
            .produce_latency
            .observe(started.elapsed().as_secs_f64());
        let keys = item.order_keys(self.stock.keys(), &order_id);
        let mut conn = self.stock.redis().get();
        let _: i64 = redis::cmd("ZREM")
            .arg(&keys.outbox)
            .arg(order_id.as_bytes())
            .arg(order_id.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Waits for background deliveries to be acknowledged and recorded (up to `timeout`),
    /// then flushes the producer. Reservations published afterwards stay for the relay.
    pub async fn drain(&self, timeout: Duration) {
        self.pipeline.stop(timeout).await;
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }
}
