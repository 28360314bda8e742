//! The orders producer: idempotent (no duplicates from its own retries), `acks=all`, keyed by
//! item so one item's orders stay in order on one partition.

use std::time::Duration;

use rdkafka::{
    error::KafkaError,
    message::{Header, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer},
};

use super::KafkaEndpoint;

/// One shared producer for the orders topic.
#[derive(Clone)]
pub struct OrderProducer {
    producer: FutureProducer,
    topic: String,
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
        let producer: FutureProducer = endpoint
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .set("queue.buffering.max.messages", "1000000")
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
        })
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one message without waiting; the future resolves on the broker's ack (or its
    /// failure after the message timeout).
    ///
    /// # Errors
    /// The local queue is full.
    pub fn enqueue(&self, key: &str, payload: &[u8]) -> Result<DeliveryFuture, KafkaError> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        self.producer.send_result(record).map_err(|(e, _)| e)
    }

    /// Sends one message and waits for the broker's acknowledgement.
    ///
    /// # Errors
    /// The local queue is full, or the broker did not acknowledge within the message timeout.
    pub async fn send(&self, key: &str, payload: &[u8]) -> Result<(), KafkaError> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        let delivery = self.producer.send_result(record).map_err(|(e, _)| e)?;
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::Canceled),
        }
    }

    /// Sends a message to the dead-letter `topic` with the reason in a `seckill-error` header,
    /// and waits for the acknowledgement.
    ///
    /// # Errors
    /// As [`OrderProducer::send`].
    pub async fn send_dead_letter(
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
        let delivery = self.producer.send_result(record).map_err(|(e, _)| e)?;
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::Canceled),
        }
    }

    /// Waits up to `timeout` for every queued message to be acknowledged (shutdown).
    ///
    /// # Errors
    /// Messages were still unacknowledged at the deadline.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}
