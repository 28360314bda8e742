//! The orders producer: idempotent (no duplicates from its own retries), `acks=all`, keyed by
//! item so one item's orders stay in order on one partition.
//!
//! A producer whose delivery failed is retired and replaced by a fresh one (a new producer id)
//! when the failure says its session is suspect: messages that timed out (librdkafka then bumps
//! the producer epoch locally, which Kafka accepts but some Kafka-protocol brokers, tansu 0.6
//! among them, cannot follow), a broker error that survived librdkafka's retries, or a fatal
//! error. Each producer is a numbered [`Generation`]: failures reported by a retired generation
//! never retire its successor, and replacements are at least [`RESET_AT_MOST_EVERY`] apart.
//! The messages that failed stay in the Redis outbox and the relay sends them again.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use rdkafka::{
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
};

use super::{KafkaEndpoint, context::QuietContext};

/// How long the producer lets messages gather into one request: librdkafka's per-request cost
/// dominates when every reservation is sent alone, and delivery is asynchronous to the buyer.
pub(crate) const LINGER: Duration = Duration::from_millis(20);

/// The linger when each buyer waits for its order's ack (`kafka` confirmation): messages still
/// travel together while earlier requests are in flight, but none waits for a batch to fill.
/// Buys in `kafka` mode, 64 in flight, against `ledger` mode in the same rounds: 0.14× at
/// 20 ms, 0.41× at 5 ms, 0.79× at 1 ms, 0.80× at 0 (librdkafka's mock cluster, as bench.sh
/// runs it); against tansu with SQLite storage 0.14× at 20 ms and 0.40× at 1 ms.
pub(crate) const CONFIRMING_LINGER: Duration = Duration::from_millis(1);

/// The producer type: librdkafka's reports go through [`QuietContext`].
type OrdersProducer = FutureProducer<QuietContext>;

/// Shortest time between two replacements of the producer.
pub const RESET_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The number of one producer instance, counted from 0 as instances replace each other.
pub(crate) type Generation = u64;

/// A message handed to librdkafka: the future resolves on the broker's ack (or its failure
/// after the message timeout); `generation` names the producer that carries it.
pub(crate) struct Queued {
    /// The producer instance the message was queued in.
    pub generation: Generation,
    /// Resolves on the broker's acknowledgement or the delivery's failure.
    pub delivery: DeliveryFuture,
}

struct Current {
    generation: Generation,
    producer: OrdersProducer,
}

/// One shared producer for the orders topic.
#[derive(Clone)]
pub struct OrderProducer {
    current: Arc<RwLock<Current>>,
    last_reset: Arc<Mutex<Instant>>,
    endpoint: KafkaEndpoint,
    topic: String,
    message_timeout: Duration,
    linger: Duration,
}

fn build(
    endpoint: &KafkaEndpoint,
    message_timeout: Duration,
    linger: Duration,
) -> Result<OrdersProducer, KafkaError> {
    endpoint
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", linger.as_millis().to_string())
        .set(
            "message.timeout.ms",
            message_timeout.as_millis().to_string(),
        )
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(QuietContext::default())
}

/// Failures that say nothing about the producer's session: the local queue is full, the
/// broker cannot be reached (nothing was sent), or the message was purged because its producer
/// was retired. A timed-out message is not among them (see the module documentation), and
/// anything else that reaches the application has already been retried by librdkafka.
fn harmless(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::QueueFull
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::PurgeQueue
                | RDKafkaErrorCode::PurgeInflight
        )
    ) || matches!(e, KafkaError::Canceled)
}

impl OrderProducer {
    /// A producer for `topic` at `endpoint`; a message not acknowledged within
    /// `message_timeout` is reported failed (the outbox relay takes it from there). Messages
    /// wait up to `linger` to travel in batches: librdkafka's per-request cost dominates when
    /// every buy reserves, and nobody waits for this delivery.
    ///
    /// # Errors
    /// librdkafka refused the configuration.
    pub fn new(
        endpoint: &KafkaEndpoint,
        topic: &str,
        message_timeout: Duration,
        linger: Duration,
    ) -> Result<Self, KafkaError> {
        Ok(Self {
            current: Arc::new(RwLock::new(Current {
                generation: 0,
                producer: build(endpoint, message_timeout, linger)?,
            })),
            // The first rebuild may come at once; later ones are spaced.
            last_reset: Arc::new(Mutex::new(
                Instant::now()
                    .checked_sub(RESET_AT_MOST_EVERY)
                    .unwrap_or_else(Instant::now),
            )),
            endpoint: endpoint.clone(),
            topic: topic.to_string(),
            message_timeout,
            linger,
        })
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn current(&self) -> (Generation, OrdersProducer) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.generation, current.producer.clone())
    }

    /// The producer instance now in use.
    pub fn generation(&self) -> Generation {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    /// Looks at a delivery that failed in producer `generation` and replaces that producer if
    /// the failure makes its session suspect (see the module documentation). Returns true when
    /// it replaced it.
    pub fn recover_from(&self, generation: Generation, error: &KafkaError) -> bool {
        let (current, producer) = self.current();
        if generation != current {
            return false; // already replaced
        }
        let fatal = producer.client().fatal_error();
        if fatal.is_none() && harmless(error) {
            return false;
        }
        let mut last = self.last_reset.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < RESET_AT_MOST_EVERY {
            return false;
        }
        match build(&self.endpoint, self.message_timeout, self.linger) {
            Ok(fresh) => {
                let old = {
                    let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
                    if slot.generation != generation {
                        return false;
                    }
                    slot.generation += 1;
                    std::mem::replace(&mut slot.producer, fresh)
                };
                tracing::warn!(error.message = %error, fatal = ?fatal, retired = generation, "Kafka producer replaced by a fresh one; the outbox relay re-sends what failed");
                // Dropping a producer purges and flushes for up to 500 ms: not on a runtime thread.
                std::thread::spawn(move || drop(old));
                *last = Instant::now();
                true
            }
            Err(e) => {
                tracing::error!(error.message = %e, "creating a fresh Kafka producer failed");
                false
            }
        }
    }

    /// Queues one message without waiting.
    ///
    /// # Errors
    /// The local queue is full.
    pub(crate) fn enqueue(&self, key: &str, payload: &[u8]) -> Result<Queued, KafkaError> {
        let (generation, producer) = self.current();
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
        Ok(Queued {
            generation,
            delivery,
        })
    }

    /// Sends one message and waits for the broker's acknowledgement.
    ///
    /// # Errors
    /// The local queue is full, or the broker did not acknowledge within the message timeout.
    pub async fn send(&self, key: &str, payload: &[u8]) -> Result<(), KafkaError> {
        let queued = self.enqueue(key, payload)?;
        let result = match queued.delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::Canceled),
        };
        if let Err(e) = &result {
            self.recover_from(queued.generation, e);
        }
        result
    }

    /// Sends one message to another `topic` (lifecycle events) and waits for the ack.
    ///
    /// # Errors
    /// As [`OrderProducer::send`].
    pub(crate) async fn send_to(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<(), KafkaError> {
        self.deliver(FutureRecord::to(topic).key(key).payload(payload))
            .await
    }

    /// Queues `record` on the current producer and waits for its acknowledgement; a fatal
    /// error replaces the producer (`recover_from`).
    async fn deliver<K, P>(&self, record: FutureRecord<'_, K, P>) -> Result<(), KafkaError>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let (generation, producer) = self.current();
        let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
        let result = match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::Canceled),
        };
        if let Err(e) = &result {
            self.recover_from(generation, e);
        }
        result
    }

    /// Sends a message to the dead-letter `topic` with the reason in a `seckill-error` header,
    /// and waits for the acknowledgement.
    ///
    /// # Errors
    /// As [`OrderProducer::send`].
    pub(crate) async fn send_dead_letter(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        reason: &str,
    ) -> Result<(), KafkaError> {
        let headers = OwnedHeaders::new().insert(Header {
            key: "seckill-error",
            value: Some(reason),
        });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).payload(payload).headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        self.deliver(record).await
    }

    /// Waits up to `timeout` for every queued message to be acknowledged (shutdown).
    ///
    /// # Errors
    /// Messages were still unacknowledged at the deadline.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.current().1.flush(timeout)
    }
}
