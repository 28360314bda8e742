//! A Bloom filter of existing sale ids, kept in Redis so every instance shares it.
//!
//! Bits are set and read with one `BITFIELD` command each (k offsets in one round trip). The
//! hash is a fixed function of the id (not the standard library's hasher, whose algorithm may
//! change between builds), so instances of different versions agree on every bit.

use redis::AsyncCommands;

use crate::stores::redis::{RedisPool, keys::Keys};

/// Bits in the filter: 2^23 (1 MiB). With 7 hashes, a million sales give a false-positive
/// rate near 0.8%; a hundred thousand, about 2 in 10^8.
pub(crate) const BITS: u64 = 1 << 23;
/// Hash functions per id.
pub(crate) const HASHES: u64 = 7;

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bit offsets of `id` (double hashing).
pub fn offsets(id: u64) -> [u64; HASHES as usize] {
    let h1 = mix(id.wrapping_add(0x9E37_79B9_7F4A_7C15));
    let h2 = mix(id ^ 0xD6E8_FEB8_6659_FD93) | 1;
    let mut out = [0; HASHES as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = h1.wrapping_add((i as u64).wrapping_mul(h2)) % BITS;
    }
    out
}

/// The filter at one Redis key.
#[derive(Clone)]
pub struct SaleBloom {
    redis: RedisPool,
    keys: Keys,
}

impl SaleBloom {
    /// The filter under `keys`.
    pub fn new(redis: RedisPool, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// Adds an id.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn add(&self, id: u64) -> redis::RedisResult<()> {
        set_bits(&self.redis, &self.keys.sale_bloom(), &[id]).await
    }

    /// False when `id` certainly does not exist; true when it may.
    ///
    /// # Errors
    /// Redis failed.
    pub(crate) async fn may_contain(&self, id: u64) -> redis::RedisResult<bool> {
        let key = self.keys.sale_bloom();
        let mut bits = redis::cmd("BITFIELD_RO");
        bits.arg(&key);
        for off in offsets(id) {
            bits.arg("GET").arg("u1").arg(off);
        }
        let (exists, bits): (bool, Vec<i64>) = redis::pipe()
            .exists(&key)
            .add_command(bits)
            .query_async(&mut self.redis.get())
            .await?;
        if !exists {
            // A lost filter (Redis restarted without persistence, key deleted) reads as all
            // zeros: it must not turn every sale into a 404. Let the request through; the next
            // start-up rebuilds the filter.
            tracing::warn!(%key, "the Bloom filter of sale ids is missing; not filtering");
            return Ok(true);
        }
        Ok(bits.iter().all(|b| *b == 1))
    }

    /// Replaces the filter with one holding exactly `ids`: built under a temporary key, then
    /// renamed over the old one in one step, so readers never see a half-built filter.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn rebuild(&self, ids: &[u64]) -> redis::RedisResult<()> {
        let tmp = self
            .keys
            .sale_bloom_rebuild(&uuid::Uuid::new_v4().simple().to_string());
        let mut conn = self.redis.get();
        // Sizes the bitmap and makes the key exist even with no ids, so RENAME always works.
        let _: i64 = redis::cmd("SETBIT")
            .arg(&tmp)
            .arg(BITS - 1)
            .arg(0)
            .query_async(&mut conn)
            .await?;
        for chunk in ids.chunks(1_000) {
            set_bits(&self.redis, &tmp, chunk).await?;
        }
        let _: () = conn.rename(&tmp, self.keys.sale_bloom()).await?;
        Ok(())
    }
}

async fn set_bits(redis: &RedisPool, key: &str, ids: &[u64]) -> redis::RedisResult<()> {
    let mut cmd = redis::cmd("BITFIELD");
    cmd.arg(key);
    for id in ids {
        for off in offsets(*id) {
            cmd.arg("SET").arg("u1").arg(off).arg(1);
        }
    }
    let _: Vec<i64> = cmd.query_async(&mut redis.get()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_in_range() {
        assert_eq!(offsets(42), offsets(42));
        assert_ne!(offsets(42), offsets(43));
        assert!(offsets(u64::MAX).iter().all(|o| *o < BITS));
    }

    #[test]
    fn the_false_positive_rate_is_as_designed() {
        // Simulate the filter in memory with 100k members, probe 100k non-members.
        let mut bits = vec![false; BITS as usize];
        for id in 0..100_000u64 {
            for o in offsets(id) {
                bits[o as usize] = true;
            }
        }
        let false_positives = (1_000_000..1_100_000u64)
            .filter(|id| offsets(*id).iter().all(|o| bits[*o as usize]))
            .count();
        assert!(
            false_positives <= 10,
            "{false_positives} false positives in 100k"
        );
    }
}
