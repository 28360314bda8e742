//! Connections to Redis, standalone, cluster, or a master found through Sentinel, chosen by
//! the URL alone.
//!
//! Connections are multiplexed (many requests in flight on one socket) and reconnect by
//! themselves, so a small fixed set handed out round-robin carries the hot path without a
//! per-request checkout. deadpool-redis was tried first and left out: its recycle step sends a
//! PING on every checkout, which doubles Redis round trips on the buy path.
//!
//! Under Sentinel (`redis+sentinel://s1:p1,s2:p2/<master name>`) a connection follows a
//! failover without a restart (see [`sentinel`]). `crate::domain::redis_url` reads the URL
//! forms, TLS (`rediss…`) included.

pub mod keys;
pub mod lock;
pub mod script;
mod sentinel;
pub mod slots;
mod tls;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use redis::{
    Cmd, Pipeline, RedisFuture, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

use crate::domain::redis_url::{self, Topology};

use crate::config::RedisSettings;

pub use sentinel::SentinelConn;

/// How long one Redis command may take before it fails; a flash sale prefers a fast error to a
/// queue of stuck requests.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection, standalone or cluster; implements [`ConnectionLike`] so every redis-rs
/// command, pipeline and script runs on either.
#[derive(Clone)]
pub enum RedisConn {
    /// A multiplexed, self-reconnecting connection to one server.
    Standalone(ConnectionManager),
    /// A cluster connection that routes each command by its key's slot.
    Cluster(ClusterConnection),
    /// A connection to the master Sentinel names, moved to the new master after a failover.
    Sentinel(SentinelConn),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Standalone(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
            RedisConn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Standalone(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Standalone(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
            RedisConn::Sentinel(c) => c.get_db(),
        }
    }
}

/// A cheap-to-clone handle on a few multiplexed connections.
#[derive(Clone)]
pub struct RedisPool {
    conns: Arc<[RedisConn]>,
    next: Arc<AtomicUsize>,
    /// The URL, kept to open dedicated pub/sub connections.
    url: Arc<str>,
    /// What the URL selects.
    topology: Arc<Topology>,
    /// The CA that signs the servers' certificates (`None`: the system's roots).
    certs: Option<TlsCertificates>,
}

impl RedisPool {
    /// Connects `settings.pool_size` connections (one for a cluster, which multiplexes per node).
    ///
    /// # Errors
    /// The server is unreachable or the URL is malformed.
    pub async fn connect(settings: &RedisSettings) -> redis::RedisResult<Self> {
        let url = settings.url.trim();
        let topology = redis_url::parse(url)?;
        let certs = tls::certificates(&settings.ca_file)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let conns: Vec<RedisConn> = match &topology {
            Topology::Cluster(nodes) => {
                let mut builder = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT);
                if let Some(certs) = &certs {
                    builder = builder.certs(certs.clone());
                }
                vec![RedisConn::Cluster(
                    builder.build()?.get_async_connection().await?,
                )]
            }
            Topology::Sentinel(target) => {
                sentinel::connect(target, certs.clone(), settings.pool_size.max(1), config)
                    .await?
                    .into_iter()
                    .map(RedisConn::Sentinel)
                    .collect()
            }
            Topology::Standalone(url) => {
                let client = tls::client(url, certs.as_ref())?;
                let mut conns = Vec::new();
                for _ in 0..settings.pool_size.max(1) {
                    let conn =
                        ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                    conns.push(RedisConn::Standalone(conn));
                }
                conns
            }
        };
        Ok(Self {
            conns: conns.into(),
            next: Arc::new(AtomicUsize::new(0)),
            url: url.into(),
            topology: Arc::new(topology),
            certs,
        })
    }

    /// A connection to use for one request; clones are cheap and share the socket.
    pub fn get(&self) -> RedisConn {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }

    /// True when the URL selects Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(*self.topology, Topology::Cluster(_))
    }

    /// A client for a dedicated connection (pub/sub) to the server this pool writes to: the
    /// current master under Sentinel, any node of a cluster (classic pub/sub reaches them all).
    ///
    /// # Errors
    /// The URL is malformed, or no Sentinel named a master.
    pub(crate) async fn dedicated_client(&self) -> redis::RedisResult<redis::Client> {
        match (self.conns.first(), &*self.topology) {
            (Some(RedisConn::Sentinel(c)), _) => c.master_client().await,
            (_, Topology::Cluster(nodes)) => tls::client(
                nodes.first().map_or("", String::as_str),
                self.certs.as_ref(),
            ),
            _ => tls::client(&self.url, self.certs.as_ref()),
        }
    }

    /// Replicas connected to the master, from its `INFO replication` (`None` for a cluster,
    /// whose masters each have their own).
    ///
    /// # Errors
    /// Redis did not answer.
    pub(crate) async fn connected_replicas(&self) -> redis::RedisResult<Option<u64>> {
        if self.is_cluster() {
            return Ok(None);
        }
        let mut conn = self.get();
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("connected_slaves:"))
            .and_then(|n| n.trim().parse().ok()))
    }

    /// The configured URL (for dedicated pub/sub connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Round-trips a PING.
    ///
    /// # Errors
    /// Redis did not answer.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.get();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
