//! Distributed locks on Redis: `SET NX PX` with a random owner token; renew and release are
//! compare-and-act Lua scripts, so an owner whose lock expired can never delete or extend the
//! lock of the next owner. Used around prewarm and to elect one leader for periodic jobs.

use std::{sync::Arc, time::Duration};

use redis::AsyncCommands;
use uuid::Uuid;

use redis::RedisError;

use crate::{
    observe::metrics::Metrics,
    stores::redis::{RedisPool, keys::Keys, script::Script},
};

/// A held lock: its key and the owner token that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    key: String,
    token: String,
    ttl: Duration,
}

impl LockGuard {
    /// The owner token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Locks under one key builder.
#[derive(Clone)]
pub struct RedisLock {
    redis: RedisPool,
    keys: Keys,
    scripts: Arc<LockScripts>,
}

/// The compare-and-extend and compare-and-delete of a lock (`lua/lock_*.v1.lua`).
#[derive(Debug)]
struct LockScripts {
    renew: Script,
    release: Script,
}

impl RedisLock {
    /// Locks on `redis` with names under `keys`, their scripts recording into `metrics`.
    pub fn new(redis: RedisPool, keys: Keys, metrics: &Metrics) -> Self {
        let scripts = LockScripts {
            renew: Script::new(
                "lock_renew.v1".into(),
                include_str!("../../../lua/lock_renew.v1.lua"),
                metrics,
            ),
            release: Script::new(
                "lock_release.v1".into(),
                include_str!("../../../lua/lock_release.v1.lua"),
                metrics,
            ),
        };
        Self {
            redis,
            keys,
            scripts: Arc::new(scripts),
        }
    }

    /// Loads the lock scripts (start-up warm-up; calls also load them on `NOSCRIPT`).
    ///
    /// # Errors
    /// Redis refused a script.
    pub async fn load(&self) -> Result<(), RedisError> {
        let mut conn = self.redis.get();
        self.scripts.renew.load(&mut conn).await?;
        self.scripts.release.load(&mut conn).await
    }

    /// Takes the lock `name` for `ttl` if nobody holds it.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, RedisError> {
        let key = self.keys.lock(name);
        let token = Uuid::new_v4().to_string();
        let mut conn = self.redis.get();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.map(|_| LockGuard { key, token, ttl }))
    }

    /// Tries to take the lock until `wait` has passed.
    ///
    /// # Errors
    /// Redis failed.
    pub(crate) async fn acquire(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<LockGuard>, RedisError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(guard) = self.try_acquire(name, ttl).await? {
                return Ok(Some(guard));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Extends the lock by its ttl if the guard still owns it; `false` means it was lost.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn renew(&self, guard: &LockGuard) -> Result<bool, RedisError> {
        let mut conn = self.redis.get();
        let renewed: i64 = self
            .scripts
            .renew
            .invoke(&mut conn, &[&guard.key], |cmd| {
                cmd.arg(&guard.token)
                    .arg(guard.ttl.as_millis().max(1) as u64);
            })
            .await?;
        Ok(renewed == 1)
    }

    /// Releases the lock if the guard still owns it; `false` means it had been lost already.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn release(&self, guard: &LockGuard) -> Result<bool, RedisError> {
        let mut conn = self.redis.get();
        let released: i64 = self
            .scripts
            .release
            .invoke(&mut conn, &[&guard.key], |cmd| {
                cmd.arg(&guard.token);
            })
            .await?;
        Ok(released == 1)
    }

    /// The token currently holding `name`, if any (tests and diagnostics).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn holder(&self, name: &str) -> Result<Option<String>, RedisError> {
        let mut conn = self.redis.get();
        conn.get(self.keys.lock(name)).await
    }
}

/// Leadership of one periodic job across the instances on one database: the holder of the lock
/// `leader:<job>.<database uid>`.
/// Call [`LeaderElection::ensure`] before each run; it renews a held lock or tries to take a
/// free one. A dead leader's lock expires after its ttl and another instance takes over.
pub struct LeaderElection {
    lock: RedisLock,
    name: String,
    ttl: Duration,
    guard: Option<LockGuard>,
    /// A Redis outage fails every check; one line per period says so.
    throttle: crate::observe::log::Throttle,
}

impl LeaderElection {
    /// Election for job `job`; the lock lives `ttl` without renewal.
    pub fn new(lock: RedisLock, job: &str, ttl: Duration) -> Self {
        Self {
            name: lock.keys.leader(job),
            lock,
            ttl,
            guard: None,
            throttle: Default::default(),
        }
    }

    /// True when this instance leads after the call.
    ///
    /// # Errors
    /// Redis failed (leadership is then given up, to be safe).
    pub async fn ensure(&mut self) -> Result<bool, RedisError> {
        if let Some(guard) = &self.guard {
            match self.lock.renew(guard).await {
                Ok(true) => return Ok(true),
                Ok(false) => {
                    tracing::warn!(job = %self.name, "lost leadership (lock expired or taken)");
                    self.guard = None;
                }
                Err(e) => {
                    self.guard = None;
                    return Err(e);
                }
            }
        }
        self.guard = self.lock.try_acquire(&self.name, self.ttl).await?;
        if self.guard.is_some() {
            tracing::info!(job = %self.name, "became leader");
        }
        Ok(self.guard.is_some())
    }

    /// Sleeps `interval`, then returns `true` if this instance leads (so the job runs now);
    /// keeps sleeping while another instance leads; `false` once `shutdown` fires.
    pub(crate) async fn next_turn(
        &mut self,
        interval: std::time::Duration,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> bool {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(interval) => {}
            }
            match self.ensure().await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    let every = crate::observe::log::REPEAT_EVERY;
                    if let Some(held) = self.throttle.allow("check", every) {
                        tracing::warn!(job = %self.name, error.message = %e, repeats_since_last = held, "leader check failed; not leading until Redis answers");
                    }
                }
            }
        }
    }

    /// Releases leadership (shutdown), so another instance takes over at once.
    pub async fn step_down(&mut self) {
        if let Some(guard) = self.guard.take()
            && let Err(e) = self.lock.release(&guard).await
        {
            tracing::warn!(error.message = %e, "could not release leadership; it will expire");
        }
    }
}
