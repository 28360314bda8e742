//! Running the roles of a process: the HTTP API with its background jobs, the order consumer,
//! or all of them, until a shutdown signal.
//!
//! Shutdown order: stop accepting, let in-flight requests finish, let background Kafka
//! deliveries finish and flush the producer, let the consumer commit what it persisted.

mod consumer;
mod jobs;
mod services;

pub use consumer::ConsumerParts;
use jobs::spawn_api_jobs;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{
    self,
    state::{AppState, Services},
};

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
        let serve = |listener, router, name| {
            let metrics = api::listener::ListenerMetrics::of(&state.metrics, name);
            api::listener::serve(listener, router, limits, metrics, shutdown.clone())
        };
        tokio::join!(
            serve(self.public, api::public_router(state.clone()), "public"),
            serve(self.admin, api::admin_router(state.clone()).into(), "admin"),
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

/// A token cancelled by SIGTERM or ctrl-c.
pub(crate) fn shutdown_on_signals() -> CancellationToken {
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
