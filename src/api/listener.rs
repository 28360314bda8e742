//! The accept loop of an HTTP listener, with the limits a public port needs against slow and
//! greedy clients (OWASP API4, unrestricted resource consumption):
//!
//! - **a connection cap**: past `max_connections` open connections, a new one is answered a
//!   canned `503` and closed at once, without a task, a buffer or a parse (counted in
//!   `seckill_http_connections_refused_total`);
//! - **a header-read timeout**: a request's head must arrive within `header_timeout` of the
//!   server starting to wait for it, so a client trickling half a header loses its socket; on a
//!   kept-alive HTTP/1 connection the wait for the next request counts too;
//! - **a header size limit**: a head over `max_header_bytes` is answered 431 and the
//!   connection closed;
//! - **an idle timeout**: a connection on which no new request started for `idle_timeout` is
//!   closed once its last answer is out.
//!
//! It speaks HTTP/1.1, which is what load balancers speak to their backends; terminate HTTP/2
//! in front of it.
//!
//! Each connection's peer address is handed to the handlers as `ConnectInfo`, as
//! `axum::serve` does. On shutdown the listener stops accepting, every connection finishes the
//! request it is serving and closes, and [`serve`] returns once all are closed.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{extract::ConnectInfo, extract::Request};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::front::Front;
use crate::observe::log::{REPEAT_EVERY, Throttle};

/// What a connection is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's head.
    pub header_timeout: Duration,
    /// A connection without a new request for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Most connections open at once on this listener.
    pub max_connections: usize,
}

/// The listener's counters.
#[derive(Clone)]
pub struct ListenerMetrics {
    /// Connections open now.
    pub open: prometheus::IntGauge,
    /// Connections refused over the cap.
    pub refused: prometheus::IntCounter,
    /// Connections closed for a slow request head.
    pub header_timeouts: prometheus::IntCounter,
    /// Connections closed idle.
    pub idle_closed: prometheus::IntCounter,
}

impl ListenerMetrics {
    /// The counters of the listener `name` (`public`, `admin`, `consumer`).
    pub fn of(metrics: &crate::observe::metrics::Metrics, name: &str) -> Self {
        Self {
            open: metrics.http.connections.with_label_values(&[name]),
            refused: metrics.http.connections_refused.with_label_values(&[name]),
            header_timeouts: metrics
                .http
                .connections_closed
                .with_label_values(&[name, "header_timeout"]),
            idle_closed: metrics
                .http
                .connections_closed
                .with_label_values(&[name, "idle"]),
        }
    }
}

impl ConnectionLimits {
    /// The limits the HTTP settings ask for.
    pub(crate) fn from_settings(http: &crate::config::HttpSettings) -> Self {
        Self {
            header_timeout: Duration::from_secs(http.header_timeout_secs),
            idle_timeout: Duration::from_secs(http.idle_timeout_secs),
            max_header_bytes: usize::try_from(http.max_header_bytes).unwrap_or(usize::MAX),
            max_connections: usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// What a connection over the cap is told before it is closed.
static OVER_CAPACITY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let body = r#"{"code":"unavailable","detail":"too many connections are open; retry shortly"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// A pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` (a `Router` or a [`Front`]) on `listener` under `limits` until `shutdown`,
/// then waits for every open connection to finish its request and close.
pub async fn serve(
    listener: TcpListener,
    router: impl Into<Front>,
    limits: ConnectionLimits,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
) {
    let router = router.into();
    let builder = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let throttle = Throttle::default();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if throttle.allow("accept", REPEAT_EVERY).is_some() {
                    tracing::warn!(error.message = %e, "accepting a connection failed; pausing briefly");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.refused.inc();
            // Non-blocking: a client that does not read its answer simply loses it.
            let _ = stream.try_write(&OVER_CAPACITY);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            peer,
            idle_timeout: limits.idle_timeout,
            metrics: metrics.clone(),
        };
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            connection.run(stream, shutdown).await;
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// HTTP/1.1 with the limits set.
fn builder(limits: &ConnectionLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes);
    builder
}

/// One accepted connection.
struct Connection {
    builder: Arc<http1::Builder>,
    router: Front,
    peer: SocketAddr,
    idle_timeout: Duration,
    metrics: ListenerMetrics,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, shutdown: CancellationToken) {
        let _open = OpenConnection::new(&self.metrics.open);
        let started = Arc::new(AtomicU64::new(0));
        let service = {
            let (router, peer, started) = (self.router.clone(), self.peer, started.clone());
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                started.fetch_add(1, Ordering::Relaxed);
                request.extensions_mut().insert(ConnectInfo(peer));
                router.answer(request.map(axum::body::Body::new))
            })
        };
        let conn = self
            .builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut seen = 0;
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        self.ended_with(&e);
                    }
                    return;
                }
                () = shutdown.cancelled(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep(self.idle_timeout), if !closing => {
                    let now = started.load(Ordering::Relaxed);
                    if now == seen {
                        self.metrics.idle_closed.inc();
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    seen = now;
                }
            }
        }
    }

    /// Counts a connection that ended on an error: a slow request head, or something else
    /// (a reset, a malformed request), which is the client's business.
    fn ended_with(&self, error: &hyper::Error) {
        let timed_out = error.is_timeout();
        if timed_out {
            self.metrics.header_timeouts.inc();
        }
        tracing::debug!(peer = %self.peer, error.message = %error, timed_out, "connection ended");
    }
}

/// Counts a connection as open while it lives.
struct OpenConnection(prometheus::IntGauge);

impl OpenConnection {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
