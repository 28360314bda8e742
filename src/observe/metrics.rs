//! Prometheus metrics of one process, in a registry of its own (so tests running several apps
//! in one process each see their own counters). Labels are bounded: routes, outcome codes,
//! limiter and script names, sale ids — never user ids.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, core::Collector,
};

/// Prefix of every metric name.
pub const NAMESPACE: &str = "seckill";

/// Latency buckets in seconds, fine-grained below 10 ms where the hot path lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    /// Full names of every registered metric, recorded as they are registered.
    names: Vec<String>,
    /// HTTP requests by matched route and status code.
    pub http_requests: IntCounterVec,
    /// Connections open now, by listener (`public`, `admin`).
    pub http_connections: IntGaugeVec,
    /// Connections refused over a listener's cap, by listener.
    pub http_connections_refused: IntCounterVec,
    /// Connections closed by the server, by listener and reason (`header_timeout`, `idle`).
    pub http_connections_closed: IntCounterVec,
    /// Buy answers by outcome code (`reserved`, `sold_out`, `rate_limited`, ...).
    pub buy_outcomes: IntCounterVec,
    /// Buy handler latency (answers from memory, before the body is read, count as 0).
    pub buy_latency: Histogram,
    /// Requests turned away by a gate, by gate (`global`, `user`, `ip`, `sold_out_flag`).
    pub gate_rejections: IntCounterVec,
    /// Lua script latency by script.
    pub script_latency: HistogramVec,
    /// Lua script failures by script.
    pub script_errors: IntCounterVec,
    /// Scripts loaded again after Redis answered NOSCRIPT (restart, failover, SCRIPT FLUSH).
    pub script_reloads: IntCounter,
    /// Buy requests per call of a batching deduct script.
    pub deduct_batch_size: Histogram,
    /// Time from handing an order to the producer until the broker's ack.
    pub kafka_produce_latency: Histogram,
    /// Produce attempts that failed (the outbox relay retries them).
    pub kafka_produce_errors: IntCounter,
    /// Orders handed to the producer and not yet acknowledged.
    pub kafka_in_flight: IntGauge,
    /// Outbox entries still waiting for an ack, as last counted by the relay.
    pub outbox_backlog: IntGauge,
    /// Age in seconds of the oldest reservation still waiting for a Kafka ack.
    pub outbox_oldest_age: IntGauge,
    /// Outbox entries re-emitted by the relay.
    pub outbox_relayed: IntCounter,
    /// Messages of the orders topic not yet committed by the consumer group.
    pub consumer_lag: IntGauge,
    /// Partitions this consumer holds now.
    pub consumer_assigned_partitions: IntGauge,
    /// Times this consumer left and rejoined its group because partitions were consumed by
    /// nobody.
    pub consumer_rejoins: IntCounter,
    /// Messages per persisted batch.
    pub consumer_batch_size: Histogram,
    /// Time to persist one batch in MySQL (lock, insert, commit).
    pub consumer_persist_latency: Histogram,
    /// Orders handled by the consumer by outcome (`persisted`, `rejected`, `duplicate`, `dead_letter`).
    pub consumer_orders: IntCounterVec,
    /// Payment notifications by outcome (`paid`, `repeat`, `already_paid`, `closed`, `too_late`).
    pub payments: IntCounterVec,
    /// Orders closed, by status (`cancelled`, `expired`).
    pub orders_closed: IntCounterVec,
    /// Seconds between an order's expiry time and the job expiring it.
    pub expiry_lateness: Histogram,
    /// Units cancelled and expired orders gave back in Redis.
    pub units_released: IntCounter,
    /// Failing checks per sale in the latest reconciliation report.
    pub reconcile_discrepancies: IntGaugeVec,
    /// Sale page cache lookups answered, by level (`local`, `redis`, `mysql`).
    pub cache_hits: IntCounterVec,
    /// Sale page lookups a level could not answer, by level (`page`, `local`, `redis`): each
    /// goes on to the next level.
    pub cache_misses: IntCounterVec,
    /// Sale page lookups that had to wait for another request's fill.
    pub cache_single_flight_waits: IntCounter,
    /// Unknown sale ids turned away by the Bloom filter or a negative entry.
    pub cache_rejections: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Panics
    /// Only if two metrics share a name, which is a programming error caught by any test.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some(NAMESPACE.into()), None).expect("registry");
        let names = std::cell::RefCell::new(Vec::new());
        let register = |m: Box<dyn Collector>| {
            for d in m.desc() {
                names
                    .borrow_mut()
                    .push(format!("{NAMESPACE}_{}", d.fq_name));
            }
            registry.register(m).expect("register");
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntCounterVec::new(Opts::new(name, help), labels).expect("metric");
            register(Box::new(m.clone()));
            m
        };
        let counter = |name: &str, help: &str| {
            let m = IntCounter::new(name, help).expect("metric");
            register(Box::new(m.clone()));
            m
        };
        let gauge = |name: &str, help: &str| {
            let m = IntGauge::new(name, help).expect("metric");
            register(Box::new(m.clone()));
            m
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let m = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("metric");
            register(Box::new(m.clone()));
            m
        };
        let script_latency = HistogramVec::new(
            HistogramOpts::new("script_duration_seconds", "Lua script latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["script"],
        )
        .expect("metric");
        register(Box::new(script_latency.clone()));
        let reconcile_discrepancies = IntGaugeVec::new(
            Opts::new(
                "reconcile_discrepancies",
                "Failing checks in the latest reconciliation report of a sale",
            ),
            &["sale_id"],
        )
        .expect("metric");
        register(Box::new(reconcile_discrepancies.clone()));
        let http_connections = IntGaugeVec::new(
            Opts::new("http_connections", "HTTP connections open now, by listener"),
            &["listener"],
        )
        .expect("metric");
        register(Box::new(http_connections.clone()));
        Self {
            http_connections,
            http_connections_refused: counter_vec(
                "http_connections_refused_total",
                "HTTP connections refused because the listener had its maximum open",
                &["listener"],
            ),
            http_connections_closed: counter_vec(
                "http_connections_closed_total",
                "HTTP connections the server closed, by reason (header_timeout, idle)",
                &["listener", "reason"],
            ),
            http_requests: counter_vec(
                "http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            buy_outcomes: counter_vec(
                "buy_outcomes_total",
                "Buy answers by outcome code",
                &["code"],
            ),
            buy_latency: histogram(
                "buy_duration_seconds",
                "Buy handler latency",
                LATENCY_BUCKETS.to_vec(),
            ),
            gate_rejections: counter_vec(
                "gate_rejections_total",
                "Buy requests turned away by a gate",
                &["gate"],
            ),
            script_latency,
            script_errors: counter_vec(
                "script_errors_total",
                "Lua script calls that failed",
                &["script"],
            ),
            script_reloads: counter(
                "script_reloads_total",
                "Scripts loaded again after NOSCRIPT",
            ),
            deduct_batch_size: histogram(
                "deduct_batch_size",
                "Buy requests per call of a batching deduct script",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            kafka_produce_latency: histogram(
                "kafka_produce_duration_seconds",
                "Time until the broker acknowledged an order",
                LATENCY_BUCKETS.to_vec(),
            ),
            kafka_produce_errors: counter(
                "kafka_produce_errors_total",
                "Order produce attempts that failed",
            ),
            kafka_in_flight: gauge(
                "kafka_in_flight",
                "Orders handed to the producer and not yet acknowledged",
            ),
            outbox_backlog: gauge(
                "outbox_backlog",
                "Reservations waiting for a Kafka ack, as last counted by the relay",
            ),
            outbox_oldest_age: gauge(
                "outbox_oldest_age_seconds",
                "Age of the oldest reservation waiting for a Kafka ack, as last seen by the relay",
            ),
            outbox_relayed: counter(
                "outbox_relayed_total",
                "Reservations re-emitted by the outbox relay",
            ),
            consumer_lag: gauge(
                "consumer_lag",
                "Messages of the orders topic not yet committed by the consumer group",
            ),
            consumer_assigned_partitions: gauge(
                "consumer_assigned_partitions",
                "Partitions of the orders topic this consumer holds now",
            ),
            consumer_rejoins: counter(
                "consumer_rejoins_total",
                "Times this consumer rejoined its group because waiting partitions had no consumer",
            ),
            consumer_batch_size: histogram(
                "consumer_batch_size",
                "Messages per persisted batch",
                vec![1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0],
            ),
            consumer_persist_latency: histogram(
                "consumer_persist_duration_seconds",
                "Time to persist one batch in MySQL",
                LATENCY_BUCKETS.to_vec(),
            ),
            consumer_orders: counter_vec(
                "consumer_orders_total",
                "Orders handled by the consumer by outcome",
                &["outcome"],
            ),
            payments: counter_vec(
                "payments_total",
                "Payment notifications by outcome",
                &["outcome"],
            ),
            orders_closed: counter_vec(
                "orders_closed_total",
                "Orders cancelled or expired",
                &["status"],
            ),
            expiry_lateness: histogram(
                "order_expiry_lateness_seconds",
                "Time between an order's expiry and the job expiring it",
                vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
            ),
            units_released: counter(
                "units_released_total",
                "Units cancelled and expired orders gave back in Redis",
            ),
            reconcile_discrepancies,
            cache_hits: counter_vec(
                "sale_cache_hits_total",
                "Sale page lookups answered, by level",
                &["level"],
            ),
            cache_misses: counter_vec(
                "sale_cache_misses_total",
                "Sale page lookups a cache level could not answer, by level",
                &["level"],
            ),
            cache_single_flight_waits: counter(
                "sale_cache_single_flight_waits_total",
                "Sale page lookups that waited for another request's fill",
            ),
            cache_rejections: counter_vec(
                "sale_cache_rejections_total",
                "Unknown sale ids turned away without a MySQL query",
                &["by"],
            ),
            registry,
            names: names.into_inner(),
        }
    }

    /// The full name of every metric family (dashboards and alerts are checked against it).
    pub fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error.message = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
