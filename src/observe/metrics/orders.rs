//! The metrics of what happens to orders after the answer: the Kafka producer, the outbox
//! relay, the consumer, the order lifecycle and reconciliation.

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use super::{LATENCY_BUCKETS, Registrar};

/// The Kafka producer.
pub struct KafkaMetrics {
    /// Time from handing an order to the producer until the broker's ack.
    pub produce_latency: Histogram,
    /// Produce attempts that failed (the outbox relay retries them).
    pub produce_errors: IntCounter,
    /// Orders handed to the producer and not yet acknowledged.
    pub in_flight: IntGauge,
}

impl KafkaMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            produce_latency: r.histogram(
                "kafka_produce_duration_seconds",
                "Time until the broker acknowledged an order",
                LATENCY_BUCKETS.to_vec(),
            ),
            produce_errors: r.counter(
                "kafka_produce_errors_total",
                "Order produce attempts that failed",
            ),
            in_flight: r.gauge(
                "kafka_in_flight",
                "Orders handed to the producer and not yet acknowledged",
            ),
        }
    }
}

/// The outbox relay.
pub struct OutboxMetrics {
    /// Outbox entries still waiting for an ack, as last counted by the relay.
    pub backlog: IntGauge,
    /// Age in seconds of the oldest reservation still waiting for a Kafka ack.
    pub oldest_age: IntGauge,
    /// Outbox entries re-emitted by the relay.
    pub relayed: IntCounter,
}

impl OutboxMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            backlog: r.gauge(
                "outbox_backlog",
                "Reservations waiting for a Kafka ack, as last counted by the relay",
            ),
            oldest_age: r.gauge(
                "outbox_oldest_age_seconds",
                "Age of the oldest reservation waiting for a Kafka ack, as last seen by the relay",
            ),
            relayed: r.counter(
                "outbox_relayed_total",
                "Reservations re-emitted by the outbox relay",
            ),
        }
    }
}

/// The order consumer.
pub struct ConsumerMetrics {
    /// Messages of the orders topic not yet committed by the consumer group.
    pub lag: IntGauge,
    /// Partitions this consumer holds now.
    pub assigned_partitions: IntGauge,
    /// Times this consumer left and rejoined its group because partitions were consumed by
    /// nobody.
    pub rejoins: IntCounter,
    /// Messages per persisted batch.
    pub batch_size: Histogram,
    /// Time to persist one batch in MySQL (lock, insert, commit).
    pub persist_latency: Histogram,
    /// Orders handled by the consumer by outcome (`persisted`, `rejected`, `duplicate`, `dead_letter`).
    pub orders: IntCounterVec,
}

impl ConsumerMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            lag: r.gauge(
                "consumer_lag",
                "Messages of the orders topic not yet committed by the consumer group",
            ),
            assigned_partitions: r.gauge(
                "consumer_assigned_partitions",
                "Partitions of the orders topic this consumer holds now",
            ),
            rejoins: r.counter(
                "consumer_rejoins_total",
                "Times this consumer rejoined its group because waiting partitions had no consumer",
            ),
            batch_size: r.histogram(
                "consumer_batch_size",
                "Messages per persisted batch",
                vec![1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0],
            ),
            persist_latency: r.histogram(
                "consumer_persist_duration_seconds",
                "Time to persist one batch in MySQL",
                LATENCY_BUCKETS.to_vec(),
            ),
            orders: r.counter_vec(
                "consumer_orders_total",
                "Orders handled by the consumer by outcome",
                &["outcome"],
            ),
        }
    }
}

/// The order lifecycle.
pub struct OrderMetrics {
    /// Payment notifications by outcome (`paid`, `repeat`, `already_paid`, `closed`, `too_late`).
    pub payments: IntCounterVec,
    /// Orders closed, by status (`cancelled`, `expired`).
    pub closed: IntCounterVec,
    /// Seconds between an order's expiry time and the job expiring it.
    pub expiry_lateness: Histogram,
    /// Units cancelled and expired orders gave back in Redis.
    pub units_released: IntCounter,
}

impl OrderMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            payments: r.counter_vec(
                "payments_total",
                "Payment notifications by outcome",
                &["outcome"],
            ),
            closed: r.counter_vec(
                "orders_closed_total",
                "Orders cancelled or expired",
                &["status"],
            ),
            expiry_lateness: r.histogram(
                "order_expiry_lateness_seconds",
                "Time between an order's expiry and the job expiring it",
                vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
            ),
            units_released: r.counter(
                "units_released_total",
                "Units cancelled and expired orders gave back in Redis",
            ),
        }
    }
}

/// Reconciliation.
pub struct ReconcileMetrics {
    /// Failing checks per sale in the latest reconciliation report.
    pub discrepancies: IntGaugeVec,
}

impl ReconcileMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            discrepancies: r.gauge_vec(
                "reconcile_discrepancies",
                "Failing checks in the latest reconciliation report of a sale",
                &["sale_id"],
            ),
        }
    }
}
