//! Calling a Lua script: `EVALSHA`, and when Redis answers `NOSCRIPT` (a restart, a failover,
//! `SCRIPT FLUSH`) the script is loaded again and the call retried once. Each script records its
//! latency and errors under its label. Which script a sale runs is `stock::scripts`' business;
//! this module only knows how to call one.

use std::time::Instant;

use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind};

use super::RedisConn;
use crate::observe::metrics::Metrics;

/// One script with its SHA1 and its metrics series (resolved once, not per call).
#[derive(Debug)]
pub struct Script {
    /// `name.version`, the metrics label and log name.
    pub label: String,
    body: &'static str,
    sha: String,
    latency: prometheus::Histogram,
    errors: prometheus::IntCounter,
    reloads: prometheus::IntCounter,
}

/// How many replicas must hold a write before it is confirmed, and how long to wait for them
/// (Redis's `WAIT numreplicas timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    /// Replicas that must acknowledge.
    pub replicas: u32,
    /// Longest wait, in milliseconds.
    pub timeout_ms: u64,
}

impl Script {
    /// The script `body`, recording under `label` into `metrics`.
    pub fn new(label: String, body: &'static str, metrics: &Metrics) -> Self {
        Self {
            sha: redis::Script::new(body).get_hash().to_string(),
            latency: metrics.scripts.latency.with_label_values(&[label.as_str()]),
            errors: metrics.scripts.errors.with_label_values(&[label.as_str()]),
            reloads: metrics.scripts.reloads.clone(),
            label,
            body,
        }
    }

    /// The script's text.
    pub fn body(&self) -> &'static str {
        self.body
    }

    /// Loads the script (`SCRIPT LOAD`).
    ///
    /// # Errors
    /// Redis refused it (a syntax error shows up here).
    pub async fn load(&self, conn: &mut RedisConn) -> RedisResult<()> {
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(self.body)
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Runs the script with `keys` and the arguments `args` adds, by `EVALSHA`, reloading once
    /// on `NOSCRIPT`.
    ///
    /// # Errors
    /// Redis failed or the reply does not convert to `T`.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut RedisConn,
        keys: &[&str],
        args: impl Fn(&mut Cmd),
    ) -> RedisResult<T> {
        let started = Instant::now();
        let cmd = self.evalsha(keys, args);
        let mut result = cmd.query_async::<T>(conn).await;
        if is_noscript(&result) {
            self.reload(conn).await?;
            result = cmd.query_async::<T>(conn).await;
        }
        self.record(started, result.is_err());
        result
    }

    /// Like [`Script::invoke`], followed on the same connection by `WAIT` for `wait.replicas`:
    /// both go out as one pipeline, so the `WAIT` covers exactly this call's writes (and reaches
    /// the node that owns the keys, in a cluster). Returns the reply and the number of replicas
    /// that acknowledged the writes within `wait.timeout_ms`.
    ///
    /// # Errors
    /// Redis failed or the reply does not convert to `T`.
    pub(crate) async fn invoke_replicated<T: FromRedisValue>(
        &self,
        conn: &mut RedisConn,
        keys: &[&str],
        args: impl Fn(&mut Cmd),
        wait: ReplicaWait,
    ) -> RedisResult<(T, u32)> {
        let started = Instant::now();
        let mut pipe = redis::pipe();
        pipe.add_command(self.evalsha(keys, args))
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(wait.timeout_ms);
        let mut result = pipe.query_async::<(T, u32)>(conn).await;
        if is_noscript(&result) {
            self.reload(conn).await?;
            result = pipe.query_async::<(T, u32)>(conn).await;
        }
        self.record(started, result.is_err());
        result
    }

    async fn reload(&self, conn: &mut RedisConn) -> RedisResult<()> {
        self.reloads.inc();
        tracing::warn!(script = %self.label, "Redis lost the script (NOSCRIPT: a restart, failover or SCRIPT FLUSH); loading it again");
        self.load(conn).await
    }

    fn record(&self, started: Instant, failed: bool) {
        self.latency.observe(started.elapsed().as_secs_f64());
        if failed {
            self.errors.inc();
        }
    }

    fn evalsha(&self, keys: &[&str], args: impl Fn(&mut Cmd)) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(keys.len()).arg(keys);
        args(&mut cmd);
        cmd
    }
}

fn is_noscript<T>(result: &RedisResult<T>) -> bool {
    matches!(result, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}
