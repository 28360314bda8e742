//! Running the roles of a process: the HTTP API with its background jobs, the order consumer,
//! or all of them, until a shutdown signal.
//!
//! Shutdown order: stop accepting, let in-flight requests finish, let background Kafka
//! deliveries finish and flush the producer, let the consumer commit what it persisted.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api,
    config::Settings,
    consumer::{ConsumerHealth, OrderConsumer},
    observe::metrics::Metrics,
    state::{AppState, Services},
    stores::{
        kafka::{KafkaEndpoint, producer::OrderProducer},
        mysql,
        redis::lock::LeaderElection,
    },
};

/// How often lifecycle events are relayed to Kafka.
const EVENTS_INTERVAL: Duration = Duration::from_millis(500);
/// How often keyed token buckets are pruned.
const LIMITER_PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// The bound HTTP listeners with the services behind them: the public one (buyers, the
/// payment provider, probes) and the admin one (the admin API and `/metrics`, on loopback
/// unless configured otherwise).
pub struct Application {
    public: TcpListener,
    admin: TcpListener,
    state: AppState,
}

async fn listen(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({name})"))
}

impl Application {
    /// Binds the configured addresses (port 0 picks a free port).
    ///
    /// # Errors
    /// An address cannot be bound.
    pub async fn bind(services: Arc<Services>) -> anyhow::Result<Self> {
        let public = listen(services.settings.http.addr, "SECKILL_HTTP_ADDR").await?;
        let admin = listen(services.settings.admin_addr, "SECKILL_ADMIN_ADDR").await?;
        Ok(Self {
            public,
            admin,
            state: AppState(services),
        })
    }

    /// The bound public address.
    pub fn local_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP and runs the API's background jobs (outbox relay, prewarm scheduler,
    /// limiter pruning) until `shutdown`, then drains.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let state = self.state;
        let jobs = spawn_api_jobs(&state, &shutdown);
        tokio::spawn({
            let (shutdown, stopping) = (shutdown.clone(), state.stopping.clone());
            async move {
                shutdown.cancelled().await;
                stopping.cancel();
            }
        });
        tracing::info!(public = %self.public.local_addr()?, admin = %self.admin.local_addr()?, "serving HTTP");
        let limits = api::listener::ConnectionLimits::from_settings(&state.settings.http);
        let metrics = |name| api::listener::ListenerMetrics::of(&state.metrics, name);
        tokio::join!(
            api::listener::serve(
                self.public,
                api::public_router(state.clone()),
                limits,
                metrics("public"),
                shutdown.clone(),
            ),
            api::listener::serve(
                self.admin,
                api::admin_router(state.clone()),
                limits,
                metrics("admin"),
                shutdown.clone(),
            ),
        );
        tracing::info!("HTTP stopped; draining Kafka deliveries");
        let grace = Duration::from_secs(state.settings.http.shutdown_grace_secs);
        state.outbox.drain(grace).await;
        for job in jobs {
            let _ = tokio::time::timeout(grace, job).await;
        }
        tracing::info!("API stopped cleanly");
        Ok(())
    }
}

fn spawn_api_jobs(
    state: &AppState,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut jobs = Vec::new();
    let relay_ttl =
        Duration::from_millis(state.settings.relay.interval_ms * 5).max(Duration::from_secs(5));
    jobs.push(tokio::spawn(state.outbox.clone().run_relay(
        state.db.clone(),
        state.settings.relay.clone(),
        state.settings.sale.clone(),
        LeaderElection::new(state.lock.clone(), "relay", relay_ttl),
        shutdown.clone(),
    )));
    let requests = state
        .recovery_requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(requests) = requests {
        jobs.push(tokio::spawn(
            state
                .admin
                .clone()
                .run_scheduler(requests, shutdown.clone()),
        ));
    }
    let expiry = state.settings.lifecycle.expiry_interval_ms;
    if expiry > 0 {
        let interval = Duration::from_millis(expiry);
        let ttl = (interval * 5).max(Duration::from_secs(5));
        jobs.push(tokio::spawn(state.lifecycle.clone().run_expiry(
            interval,
            LeaderElection::new(state.lock.clone(), "expiry", ttl),
            shutdown.clone(),
        )));
    }
    jobs.push(tokio::spawn(crate::orders::events::run(
        state.db.clone(),
        state.outbox.producer().clone(),
        state.settings.lifecycle.events_topic.clone(),
        EVENTS_INTERVAL,
        LeaderElection::new(state.lock.clone(), "events", Duration::from_secs(5)),
        shutdown.clone(),
    )));
    let every = state.settings.reconcile.interval_secs;
    if every > 0 {
        let ttl = Duration::from_secs(every.saturating_mul(3)).max(Duration::from_secs(10));
        jobs.push(tokio::spawn(state.reconciler.clone().run_periodically(
            LeaderElection::new(state.lock.clone(), "reconcile", ttl),
            shutdown.clone(),
        )));
    }
    let sold_out = state.buy.sold_out_flags().clone();
    jobs.push(tokio::spawn(crate::sales::invalidation::listen(
        state.sale_pages.clone(),
        move |item| sold_out.clear(item),
        state.redis.clone(),
        state.stock.keys().sale_invalidations(),
        shutdown.clone(),
    )));
    let gates = state.buy.gates().clone();
    let token = shutdown.clone();
    jobs.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(LIMITER_PRUNE_INTERVAL) => gates.prune(),
            }
        }
    }));
    jobs
}

/// A token cancelled by SIGTERM or ctrl-c.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("ctrl-c: shutting down"),
            () = term => tracing::info!("SIGTERM: shutting down"),
        }
        t.cancel();
    });
    token
}

/// What the order consumer needs: MySQL, Kafka, a producer for dead letters, metrics, and the
/// health it shares with its readiness probe.
pub struct ConsumerParts {
    db: sqlx::MySqlPool,
    kafka: KafkaEndpoint,
    producer: OrderProducer,
    metrics: Arc<Metrics>,
    health: ConsumerHealth,
}

fn consumer_health(settings: &Settings, metrics: &Metrics) -> ConsumerHealth {
    ConsumerHealth::new(
        metrics,
        Duration::from_secs(settings.consumer.unassigned_not_ready_secs),
    )
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
            health: consumer_health(settings, &metrics),
            db,
            kafka,
            producer,
            metrics,
        })
    }

    /// Reuses the connections of a full process (`seckill all`, tests).
    pub fn from_services(services: &Services) -> Self {
        Self {
            health: consumer_health(&services.settings, &services.metrics),
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
    pub async fn serve_health(
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
