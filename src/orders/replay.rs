//! Payment notifications seen before: a signed notification is accepted once. Its MAC is
//! recorded in Redis (`SET NX`) for twice the signature tolerance, by when its timestamp alone
//! refuses it; a second sight within that time is a replay.

use redis::RedisResult;

use super::signature::{Signed, TOLERANCE_SECS};
use crate::stores::redis::{RedisPool, keys::Keys};

/// The record of signatures seen, in Redis.
#[derive(Clone)]
pub(crate) struct SeenSignatures {
    redis: RedisPool,
    keys: Keys,
}

impl SeenSignatures {
    /// Records in `redis`, under `keys`' prefix.
    pub fn new(redis: RedisPool, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// Records `signed`; false when it was recorded before (a replay).
    ///
    /// # Errors
    /// Redis failed.
    pub(crate) async fn first_sight(&self, signed: &Signed) -> RedisResult<bool> {
        let mut conn = self.redis.get();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.payment_signature(&signed.mac))
            .arg(signed.timestamp)
            .arg("NX")
            .arg("EX")
            .arg(TOLERANCE_SECS * 2)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Forgets `signed`, so that the same notification may be sent again (its processing
    /// failed for a reason the provider should retry).
    ///
    /// # Errors
    /// Redis failed.
    pub(crate) async fn forget(&self, signed: &Signed) -> RedisResult<()> {
        let mut conn = self.redis.get();
        redis::cmd("DEL")
            .arg(self.keys.payment_signature(&signed.mac))
            .query_async(&mut conn)
            .await
    }
}
