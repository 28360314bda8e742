//! The order consumer role: what it needs, its health endpoint, and its loop.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, state::Services},
    config::Settings,
    consumer::{ConsumerHealth, OrderConsumer},
    observe::metrics::Metrics,
    stores::{
        kafka::{KafkaEndpoint, producer::OrderProducer},
        mysql,
    },
};

/// What the order consumer needs: MySQL, Kafka, a producer for dead letters, metrics, and the
/// health it shares with its readiness probe.
pub struct ConsumerParts {
    db: sqlx::MySqlPool,
    kafka: KafkaEndpoint,
    producer: OrderProducer,
    metrics: Arc<Metrics>,
    health: ConsumerHealth,
}

/// How long a consumer may hold no partition while orders wait before its `/readyz` says 503
/// (three session timeouts: a rebalance that leaves it out lasts longer than that only when the
/// broker forgot it, which the watchdog repairs).
const UNASSIGNED_NOT_READY: Duration = Duration::from_secs(30);

fn consumer_health(metrics: &Metrics) -> ConsumerHealth {
    ConsumerHealth::new(metrics, UNASSIGNED_NOT_READY)
}

impl ConsumerParts {
    /// Connects what `seckill consume` needs (Redis is not among it).
    ///
    /// # Errors
    /// MySQL or Kafka unreachable.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let db = mysql::open(&settings.mysql, settings.mysql.migrate_on_start).await?;
        let kafka = KafkaEndpoint::resolve(settings)
            .await
            .with_context(|| format!("cannot reach Kafka at {}", settings.kafka.brokers))?;
        let producer = OrderProducer::new(
            &kafka,
            &settings.kafka.topic,
            settings.kafka_message_timeout(),
            settings.kafka_linger(),
        )?;
        let metrics = Arc::new(Metrics::new());
        Ok(Self {
            health: consumer_health(&metrics),
            db,
            kafka,
            producer,
            metrics,
        })
    }

    /// Reuses the connections of a full process (`seckill all`, tests).
    pub fn from_services(services: &Services) -> Self {
        Self {
            health: consumer_health(&services.metrics),
            db: services.db.clone(),
            kafka: services.kafka.clone(),
            producer: services.outbox.producer().clone(),
            metrics: services.metrics.clone(),
        }
    }

    /// Serves `/healthz`, `/readyz` (MySQL, Kafka, and partitions held while orders wait) and
    /// `/metrics` on `addr` for a stand-alone consumer, until `shutdown`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub(crate) async fn serve_health(
        &self,
        settings: &Settings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let (addr, topic) = (settings.http.addr, settings.kafka.topic.clone());
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (SECKILL_HTTP_ADDR)"))?;
        tracing::info!(%addr, "consumer health and metrics endpoint");
        let router = api::health::consumer_router(api::health::ConsumerProbe {
            db: self.db.clone(),
            kafka: Arc::new(
                self.kafka
                    .pinger()
                    .context("creating the Kafka readiness client failed")?,
            ),
            topic,
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            ready: Default::default(),
        });
        let limits = api::listener::ConnectionLimits::from_settings(&settings.http);
        let metrics = api::listener::ListenerMetrics::of(&self.metrics, "consumer");
        Ok(tokio::spawn(api::listener::serve(
            listener, router, limits, metrics, shutdown,
        )))
    }

    /// Runs the consumer until `shutdown`.
    ///
    /// # Errors
    /// The consumer could not be created.
    pub async fn run(self, settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
        let consumer = OrderConsumer::new(
            settings,
            &self.kafka,
            self.db,
            self.producer,
            self.metrics,
            self.health,
        )
        .context("creating the Kafka consumer failed")?;
        consumer.run(shutdown).await
    }
}
