//! Prometheus metrics of one process, in a registry of its own (so tests running several apps
//! in one process each see their own counters). Labels are bounded: routes, outcome codes,
//! limiter and script names, sale ids — never user ids.
//!
//! The metrics are grouped by area: what requests meet (`requests.rs`: HTTP, the buy path, the
//! Lua scripts, the sale page cache) and what happens to orders after the answer (`orders.rs`:
//! Kafka, the outbox, the consumer, the lifecycle, reconciliation).

mod orders;
mod queue;
mod requests;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, core::Collector,
};

pub use orders::{ConsumerMetrics, KafkaMetrics, OrderMetrics, OutboxMetrics, ReconcileMetrics};
pub use queue::{POLL_STATES, QueueMetrics};
pub use requests::{BuyMetrics, CacheMetrics, HttpMetrics, ScriptMetrics};

/// Prefix of every metric name.
pub(crate) const NAMESPACE: &str = "seckill";

/// Latency buckets in seconds, fine-grained below 10 ms where the hot path lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every metric the service exports, by area.
pub struct Metrics {
    registry: Registry,
    /// Full names of every registered metric, recorded as they are registered.
    names: Vec<String>,
    /// HTTP requests and connections.
    pub http: HttpMetrics,
    /// The buy path: answers, latency, gates.
    pub buy: BuyMetrics,
    /// Lua scripts: latency, failures, reloads, batching.
    pub scripts: ScriptMetrics,
    /// The sale page cache.
    pub cache: CacheMetrics,
    /// The Kafka producer.
    pub kafka: KafkaMetrics,
    /// The outbox relay.
    pub outbox: OutboxMetrics,
    /// The order consumer.
    pub consumer: ConsumerMetrics,
    /// The order lifecycle: payments, closes, units released.
    pub orders: OrderMetrics,
    /// Reconciliation.
    pub reconcile: ReconcileMetrics,
    /// The waiting room.
    pub queue: QueueMetrics,
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Panics
    /// Only if two metrics share a name, which is a programming error caught by any test.
    pub fn new() -> Self {
        let mut r = Registrar {
            registry: Registry::new_custom(Some(NAMESPACE.into()), None).expect("registry"),
            names: Vec::new(),
        };
        let http = HttpMetrics::register(&mut r);
        let buy = BuyMetrics::register(&mut r);
        let scripts = ScriptMetrics::register(&mut r);
        let cache = CacheMetrics::register(&mut r);
        let kafka = KafkaMetrics::register(&mut r);
        let outbox = OutboxMetrics::register(&mut r);
        let consumer = ConsumerMetrics::register(&mut r);
        let orders = OrderMetrics::register(&mut r);
        let reconcile = ReconcileMetrics::register(&mut r);
        let queue = QueueMetrics::register(&mut r);
        Self {
            registry: r.registry,
            names: r.names,
            http,
            buy,
            scripts,
            cache,
            kafka,
            outbox,
            consumer,
            orders,
            reconcile,
            queue,
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

/// Creates metrics in one registry, recording the full name of each as it is registered.
///
/// Every constructor panics only if two metrics share a name (see [`Metrics::new`]).
struct Registrar {
    registry: Registry,
    names: Vec<String>,
}

impl Registrar {
    fn register<M: Collector + Clone + 'static>(&mut self, m: M) -> M {
        for d in m.desc() {
            self.names.push(format!("{NAMESPACE}_{}", d.fq_name));
        }
        self.registry
            .register(Box::new(m.clone()))
            .expect("register");
        m
    }

    fn counter(&mut self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help).expect("metric"))
    }

    fn counter_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels).expect("metric"))
    }

    fn gauge(&mut self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help).expect("metric"))
    }

    fn gauge_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels).expect("metric"))
    }

    fn histogram(&mut self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        self.register(Histogram::with_opts(opts).expect("metric"))
    }

    fn histogram_vec(
        &mut self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
        labels: &[&str],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        self.register(HistogramVec::new(opts, labels).expect("metric"))
    }
}
