//! A Redis connection that follows Sentinel's master.
//!
//! redis-rs's `ConnectionManager` reconnects to the address it was built with, which after a
//! failover is the old master: dead, or back as a replica answering every write with
//! `READONLY`. This connection asks Sentinel for the master again whenever a command fails in a
//! way a failover explains (the connection dropped or was refused, a timeout, `READONLY`), and
//! moves to the new master. A command refused with `READONLY` was not run, so it is sent once
//! more to the new master; other failures are returned (a buy answers 503 and its retry, with
//! the same idempotency key, gets its order). Scripts are loaded again on the new master by the
//! registry's `NOSCRIPT` path.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind,
    TlsCertificates, TlsMode, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
};

use crate::domain::redis_url::SentinelTarget;

/// Shortest time between two questions to Sentinel from one connection: during a failover
/// every command fails, and Sentinel names the old master until it has promoted a replica.
const RESOLVE_AT_MOST_EVERY: Duration = Duration::from_millis(250);
/// Longest a question to Sentinel and the connection to the master it names may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The current master connection and its generation.
struct Current {
    generation: u64,
    conn: ConnectionManager,
    master: String,
}

struct Shared {
    sentinel: Arc<tokio::sync::Mutex<SentinelClient>>,
    config: ConnectionManagerConfig,
    current: RwLock<Current>,
    resolving: tokio::sync::Mutex<Option<Instant>>,
    moves: Arc<AtomicU64>,
}

/// One multiplexed connection to the master Sentinel names; cheap to clone.
#[derive(Clone)]
pub struct SentinelConn {
    shared: Arc<Shared>,
}

/// A Sentinel client for `target`: TLS to Sentinels and master when the URL is `rediss+…`,
/// the URL's credentials for the master.
fn client(target: &SentinelTarget, certs: Option<TlsCertificates>) -> RedisResult<SentinelClient> {
    let mut builder =
        SentinelClientBuilder::new(target.addrs(), &target.master, SentinelServerType::Master)?;
    if target.tls {
        builder = builder
            .set_client_to_sentinel_tls_mode(TlsMode::Secure)
            .set_client_to_redis_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            builder = builder
                .set_client_to_sentinel_certificates(certs.clone())
                .set_client_to_redis_certificates(certs);
        }
    }
    if let Some(user) = &target.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &target.password {
        builder = builder.set_client_to_redis_password(password);
    }
    builder.build()
}

/// `n` connections to the master the Sentinels of `target` name.
///
/// # Errors
/// The URL is malformed, no Sentinel answered, or the master did not.
pub async fn connect(
    target: &SentinelTarget,
    certs: Option<TlsCertificates>,
    n: u64,
    config: ConnectionManagerConfig,
) -> RedisResult<Vec<SentinelConn>> {
    let client = client(target, certs)?;
    let sentinel = Arc::new(tokio::sync::Mutex::new(client));
    let moves = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..n {
        let (conn, master) = open_master(&sentinel, &config).await?;
        conns.push(SentinelConn {
            shared: Arc::new(Shared {
                sentinel: sentinel.clone(),
                config: config.clone(),
                current: RwLock::new(Current {
                    generation: 0,
                    conn,
                    master,
                }),
                resolving: tokio::sync::Mutex::new(None),
                moves: moves.clone(),
            }),
        });
    }
    Ok(conns)
}

async fn open_master(
    sentinel: &tokio::sync::Mutex<SentinelClient>,
    config: &ConnectionManagerConfig,
) -> RedisResult<(ConnectionManager, String)> {
    let attempt = async {
        let client = sentinel.lock().await.async_get_client().await?;
        let master = client.get_connection_info().addr().to_string();
        let conn = ConnectionManager::new_with_config(client, config.clone()).await?;
        Ok::<_, RedisError>((conn, master))
    };
    tokio::time::timeout(RESOLVE_TIMEOUT, attempt)
        .await
        .map_err(|_| {
            RedisError::from((ErrorKind::Io, "asking Sentinel for the master timed out"))
        })?
}

/// Failures a failover explains (besides `READONLY`).
fn moved(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// A `READONLY` refusal, whether it came back as an error or (as redis-rs hands server errors
/// to the caller that decodes the reply) as a `ServerError` value, alone or in a pipeline.
fn read_only_value(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly))
}

fn refused_as_read_only(r: &RedisResult<Value>) -> bool {
    match r {
        Err(e) => e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly),
        Ok(v) => read_only_value(v),
    }
}

fn pipeline_refused_as_read_only(r: &RedisResult<Vec<Value>>) -> bool {
    match r {
        Err(e) => e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly),
        Ok(values) => values.iter().any(read_only_value),
    }
}

impl SentinelConn {
    fn current(&self) -> (u64, ConnectionManager) {
        let c = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner());
        (c.generation, c.conn.clone())
    }

    /// Asks Sentinel for the master and moves there, unless another caller already moved
    /// past `seen` or asked very recently. Returns true when this connection now talks to a
    /// newer master than generation `seen`.
    async fn resolve(&self, seen: u64) -> bool {
        let mut last = self.shared.resolving.lock().await;
        if self.current().0 != seen {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < RESOLVE_AT_MOST_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        match open_master(&self.shared.sentinel, &self.shared.config).await {
            Ok((conn, master)) => {
                let mut c = self
                    .shared
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                if c.master != master {
                    self.shared.moves.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(from = %c.master, to = %master, "Redis master moved (Sentinel failover); following it");
                }
                c.generation += 1;
                c.conn = conn;
                c.master = master;
                true
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "Sentinel did not name a reachable master yet");
                false
            }
        }
    }

    /// A client for a dedicated connection to the current master (pub/sub).
    ///
    /// # Errors
    /// No Sentinel named a master.
    pub(crate) async fn master_client(&self) -> RedisResult<redis::Client> {
        self.shared.sentinel.lock().await.async_get_client().await
    }

    /// The master this connection writes to now (`host:port`).
    pub fn master(&self) -> String {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .master
            .clone()
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut conn) = self.current();
            let result = conn.req_packed_command(cmd).await;
            let refused = refused_as_read_only(&result);
            if refused || matches!(&result, Err(e) if moved(e)) {
                // Not run on a replica: send it once more to the master Sentinel names now.
                let moved_on = self.resolve(generation).await;
                if refused && moved_on {
                    let (_, mut conn) = self.current();
                    return conn.req_packed_command(cmd).await;
                }
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut conn) = self.current();
            let result = conn.req_packed_commands(cmd, offset, count).await;
            let refused = pipeline_refused_as_read_only(&result);
            if refused || matches!(&result, Err(e) if moved(e)) {
                // Not run on a replica: send it once more to the master Sentinel names now.
                let moved_on = self.resolve(generation).await;
                if refused && moved_on {
                    let (_, mut conn) = self.current();
                    return conn.req_packed_commands(cmd, offset, count).await;
                }
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.current().1.get_db()
    }
}
