//! The connections the crowd shares: at most `--connections` requests in flight, each on an
//! idle keep-alive connection when there is one (a new one otherwise). Users are tasks, not
//! connections, so a crowd of a million needs no million sockets.

use std::{
    net::SocketAddr,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Method};
use tokio::sync::Semaphore;

use crate::{
    client::{Answer, Conn, RequestTemplate},
    errors::ErrorCause,
};

/// Pause after a failed connect, so a closed port is not hammered in a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// The shared connections to the target.
pub(crate) struct Pool {
    addr: SocketAddr,
    host: HeaderValue,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    /// Requests that got no answer (refused, broken, timed out).
    pub(crate) failures: AtomicU64,
}

/// One request of a user.
pub(crate) struct Call<'a> {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// JSON body (empty: none).
    pub body: Bytes,
    /// Extra headers (name in lower case, value).
    pub headers: Vec<(&'static str, &'a HeaderValue)>,
}

impl Pool {
    /// A pool of at most `connections` connections to `addr`, whose `Host` is `host`.
    pub(crate) fn new(
        addr: SocketAddr,
        host: HeaderValue,
        connections: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            addr,
            host,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(connections.min(Semaphore::MAX_PERMITS as u64) as usize),
            failures: AtomicU64::new(0),
        }
    }

    /// Sends `call` once a connection is free; returns when it went out and the answer (or
    /// why there was none).
    pub(crate) async fn send(&self, call: Call<'_>) -> (Instant, Result<Answer, ErrorCause>) {
        let Ok(_permit) = self.permits.acquire().await else {
            return (Instant::now(), Err(ErrorCause::ConnectFailed)); // never closed
        };
        let sent = Instant::now();
        let answer = self.on_a_connection(call).await;
        if answer.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        (sent, answer)
    }

    /// `call` on an idle connection, or on a new one when there is none or when the idle one
    /// turns out closed (the server dropped it while it waited: the request is sent again,
    /// which joins, polls and keyed buys allow).
    async fn on_a_connection(&self, call: Call<'_>) -> Result<Answer, ErrorCause> {
        let template = RequestTemplate {
            method: call.method,
            path: call.path,
            host: self.host.clone(),
            body: call.body,
        };
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            match self.exchange(conn, &template, &call.headers).await {
                Err(ErrorCause::ConnectionBroken) => {}
                answer => return answer,
            }
        }
        let conn = self.connect().await?;
        self.exchange(conn, &template, &call.headers).await
    }

    /// One request on `conn`, which goes back to the idle ones when it answered.
    async fn exchange(
        &self,
        mut conn: Conn,
        template: &RequestTemplate,
        headers: &[(&'static str, &HeaderValue)],
    ) -> Result<Answer, ErrorCause> {
        let sending = conn.send_with(template, headers.iter().copied());
        match tokio::time::timeout(self.timeout, sending).await {
            Ok(Ok(answer)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                Ok(answer)
            }
            // Broken, or the answer may still come on it: never reused.
            Ok(Err(e)) => Err(e.cause()),
            Err(_) => Err(ErrorCause::Timeout),
        }
    }

    async fn connect(&self) -> Result<Conn, ErrorCause> {
        match tokio::time::timeout(self.timeout, Conn::connect(self.addr)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                tokio::time::sleep(CONNECT_BACKOFF).await;
                Err(e.cause())
            }
            Err(_) => Err(ErrorCause::ConnectFailed),
        }
    }
}
