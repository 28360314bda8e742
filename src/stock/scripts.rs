//! The versioned Lua script registry.
//!
//! Scripts live in `lua/<name>.<version>.lua` and are compiled into the binary. Calls go out as
//! `EVALSHA`; when Redis answers `NOSCRIPT` (restart, failover, `SCRIPT FLUSH`) the script is
//! loaded again and the call retried once. A sale is pinned to the version it was warmed with,
//! so a process runs each sale with its own version's scripts: every live version
//! ([`KNOWN_VERSIONS`]) has its own file of each sale script. The lock scripts are not tied to a
//! sale and have one version.

use std::{collections::HashMap, sync::Arc, time::Instant};

use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind};

use crate::{observe::metrics::Metrics, stores::redis::RedisConn};

pub use crate::domain::script_version::KNOWN_VERSIONS;

/// What a script does; each kind has one file per version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptKind {
    /// Write an item's stock and metadata with expiries (`prewarm.vN.lua`).
    Prewarm,
    /// Reserve units for a buyer atomically (`deduct.vN.lua`).
    Deduct,
    /// Compare-and-delete of a lock (`lock_release.vN.lua`).
    LockRelease,
    /// Compare-and-extend of a lock (`lock_renew.vN.lua`).
    LockRenew,
    /// Write a chunk of an item's state rebuilt from MySQL (`restore.vN.lua`, v3 on).
    Restore,
    /// Give the units of closed orders back (`release.vN.lua`, v4 on).
    Release,
}

impl ScriptKind {
    /// The file stem of this kind.
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::Prewarm => "prewarm",
            ScriptKind::Deduct => "deduct",
            ScriptKind::LockRelease => "lock_release",
            ScriptKind::LockRenew => "lock_renew",
            ScriptKind::Restore => "restore",
            ScriptKind::Release => "release",
        }
    }
}

/// Every script file compiled into this build.
const SOURCES: &[(ScriptKind, &str, &str)] = &[
    (
        ScriptKind::Prewarm,
        "v4",
        include_str!("../../lua/prewarm.v4.lua"),
    ),
    (
        ScriptKind::Deduct,
        "v4",
        include_str!("../../lua/deduct.v4.lua"),
    ),
    (
        ScriptKind::Restore,
        "v4",
        include_str!("../../lua/restore.v4.lua"),
    ),
    (
        ScriptKind::Release,
        "v4",
        include_str!("../../lua/release.v4.lua"),
    ),
    (
        ScriptKind::Prewarm,
        "v5",
        include_str!("../../lua/prewarm.v5.lua"),
    ),
    (
        ScriptKind::Deduct,
        "v5",
        include_str!("../../lua/deduct.v5.lua"),
    ),
    (
        ScriptKind::Restore,
        "v5",
        include_str!("../../lua/restore.v5.lua"),
    ),
    (
        ScriptKind::Release,
        "v5",
        include_str!("../../lua/release.v5.lua"),
    ),
    (
        ScriptKind::LockRelease,
        "v1",
        include_str!("../../lua/lock_release.v1.lua"),
    ),
    (
        ScriptKind::LockRenew,
        "v1",
        include_str!("../../lua/lock_renew.v1.lua"),
    ),
];

/// The version of the lock scripts (not tied to a sale).
const LOCK_VERSION: &str = "v1";

/// One script of one version with its SHA1.
#[derive(Debug)]
pub struct VersionedScript {
    /// The script's kind.
    pub kind: ScriptKind,
    /// Its version (`v1`).
    pub version: &'static str,
    /// `name.version`, the metrics label and log name.
    pub label: String,
    body: &'static str,
    sha: String,
    /// This script's latency and error series, resolved once (not per call).
    latency: prometheus::Histogram,
    errors: prometheus::IntCounter,
}

/// A script kind/version this build does not have.
#[derive(Debug, thiserror::Error)]
#[error("no Lua script {kind}.{version} in this build")]
pub struct UnknownScript {
    kind: &'static str,
    version: String,
}

/// All scripts of this build, by kind and version.
pub struct ScriptRegistry {
    scripts: HashMap<(ScriptKind, &'static str), Arc<VersionedScript>>,
    metrics: Arc<Metrics>,
}

impl ScriptRegistry {
    /// Builds the registry from the compiled-in sources.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let scripts = SOURCES
            .iter()
            .map(|&(kind, version, body)| {
                let sha = redis::Script::new(body).get_hash().to_string();
                let label = format!("{}.{version}", kind.name());
                let script = VersionedScript {
                    kind,
                    version,
                    latency: metrics.script_latency.with_label_values(&[label.as_str()]),
                    errors: metrics.script_errors.with_label_values(&[label.as_str()]),
                    label,
                    body,
                    sha,
                };
                ((kind, version), Arc::new(script))
            })
            .collect();
        Self { scripts, metrics }
    }

    /// The script of `kind` a sale pinned to `version` runs.
    ///
    /// # Errors
    /// This build does not run `version` (a sale pinned to a retired version).
    pub fn get(
        &self,
        kind: ScriptKind,
        version: &str,
    ) -> Result<&Arc<VersionedScript>, UnknownScript> {
        KNOWN_VERSIONS
            .iter()
            .find(|v| **v == version)
            .and_then(|v| self.scripts.get(&(kind, *v)))
            .ok_or_else(|| UnknownScript {
                kind: kind.name(),
                version: version.to_string(),
            })
    }

    /// The metrics the scripts record into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A lock script (`LockRelease`, `LockRenew`), which no sale pins.
    ///
    /// # Panics
    /// `kind` is not a lock script (a programming error any test catches).
    pub fn lock(&self, kind: ScriptKind) -> &Arc<VersionedScript> {
        self.scripts
            .get(&(kind, LOCK_VERSION))
            .expect("the lock scripts are compiled in")
    }

    /// Loads every script (start-up warm-up; calls also load lazily on NOSCRIPT).
    ///
    /// # Errors
    /// Redis refused a script (a syntax error would show up here, at start-up).
    pub async fn load_all(&self, conn: &mut RedisConn) -> RedisResult<()> {
        for script in self.scripts.values() {
            let _: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script.body)
                .query_async(conn)
                .await?;
        }
        Ok(())
    }

    /// Runs `script` with `keys` and the arguments `args` adds, by `EVALSHA`, reloading once on
    /// `NOSCRIPT`.
    ///
    /// # Errors
    /// Redis failed or the reply does not convert to `T`.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut RedisConn,
        script: &VersionedScript,
        keys: &[&str],
        args: impl Fn(&mut Cmd),
    ) -> RedisResult<T> {
        let started = Instant::now();
        let cmd = evalsha(script, keys, args);
        let mut result = cmd.query_async::<T>(conn).await;
        if is_noscript(&result) {
            self.reload(conn, script).await?;
            result = cmd.query_async::<T>(conn).await;
        }
        self.record(script, started, result.is_err());
        result
    }

    /// Like [`ScriptRegistry::invoke`], followed on the same connection by `WAIT` for
    /// `wait.replicas`: both go out as one pipeline, so the `WAIT` covers exactly this call's
    /// writes (and reaches the node that owns the keys, in a cluster). Returns the reply and
    /// the number of replicas that acknowledged the writes within `wait.timeout_ms`.
    ///
    /// # Errors
    /// Redis failed or the reply does not convert to `T`.
    pub async fn invoke_replicated<T: FromRedisValue>(
        &self,
        conn: &mut RedisConn,
        script: &VersionedScript,
        keys: &[&str],
        args: impl Fn(&mut Cmd),
        wait: ReplicaWait,
    ) -> RedisResult<(T, u32)> {
        let started = Instant::now();
        let mut pipe = redis::pipe();
        pipe.add_command(evalsha(script, keys, args))
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(wait.timeout_ms);
        let mut result = pipe.query_async::<(T, u32)>(conn).await;
        if is_noscript(&result) {
            self.reload(conn, script).await?;
            result = pipe.query_async::<(T, u32)>(conn).await;
        }
        self.record(script, started, result.is_err());
        result
    }

    async fn reload(&self, conn: &mut RedisConn, script: &VersionedScript) -> RedisResult<()> {
        self.metrics.script_reloads.inc();
        tracing::warn!(script = %script.label, "Redis lost the script (NOSCRIPT: a restart, failover or SCRIPT FLUSH); loading it again");
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script.body)
            .query_async(conn)
            .await?;
        Ok(())
    }

    fn record(&self, script: &VersionedScript, started: Instant, failed: bool) {
        script.latency.observe(started.elapsed().as_secs_f64());
        if failed {
            script.errors.inc();
        }
    }
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

fn evalsha(script: &VersionedScript, keys: &[&str], args: impl Fn(&mut Cmd)) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.sha).arg(keys.len()).arg(keys);
    args(&mut cmd);
    cmd
}

fn is_noscript<T>(result: &RedisResult<T>) -> bool {
    matches!(result, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_live_version_has_every_sale_script_of_its_own() {
        let reg = ScriptRegistry::new(Arc::new(Metrics::new()));
        for v in KNOWN_VERSIONS {
            for kind in [
                ScriptKind::Prewarm,
                ScriptKind::Deduct,
                ScriptKind::Restore,
                ScriptKind::Release,
            ] {
                let script = reg.get(kind, v).unwrap();
                assert_eq!(script.label, format!("{}.{v}", kind.name()));
            }
        }
        for retired in crate::domain::script_version::RETIRED_VERSIONS {
            assert!(reg.get(ScriptKind::Deduct, retired).is_err());
        }
        assert!(reg.get(ScriptKind::Deduct, "v999").is_err());
        assert_eq!(reg.lock(ScriptKind::LockRenew).label, "lock_renew.v1");
    }

    #[test]
    fn every_script_opens_with_its_contract() {
        for (kind, version, body) in SOURCES {
            let head: String = body.lines().take(3).collect();
            assert!(
                head.starts_with(&format!("-- {}.{version}:", kind.name())),
                "{}.{version} must open with its name",
                kind.name()
            );
            assert!(
                body.contains("KEYS[1]"),
                "{} lacks a KEYS contract",
                kind.name()
            );
            assert!(
                body.contains("Returns"),
                "{} lacks a Returns contract",
                kind.name()
            );
        }
    }
}
