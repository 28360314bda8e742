//! Buyers who bought with their admission free their place: the buy path records them here
//! (in memory), and a flusher writes them to the room's sorted set of finished buyers, scored
//! by position, every [`FLUSH_EVERY`] (the usher counts the ones not yet lapsed).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{AdmissionClaims, WaitingRoom, join::digest};

/// How often finished buyers are written to Redis.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// One buyer who bought with an admission.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    sale_id: u64,
    /// The sale's uid as its room's keys carry it (script v6 on).
    key_uid: Option<u128>,
    position: u64,
    digest: [u8; 8],
    expire_at_ms: i64,
}

impl WaitingRoom {
    /// Records that the holder of `claims` bought in `sale_id` (whose room's keys carry
    /// `key_uid`, and expire with the sale), and how long they waited.
    pub fn finished(
        &self,
        sale_id: u64,
        key_uid: Option<u128>,
        claims: &AdmissionClaims,
        ends_at_ms: i64,
    ) {
        let waited = claims.nbf.saturating_sub(claims.jat);
        self.inner.metrics.queue.waited.observe(waited as f64);
        let entry = Finished {
            sale_id,
            key_uid,
            position: claims.pos,
            digest: digest(&claims.sub).0,
            expire_at_ms: ends_at_ms + self.inner.grace_secs * 1000,
        };
        self.inner
            .finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// Writes finished buyers every [`FLUSH_EVERY`] until `shutdown`, then once more.
    pub async fn run_flusher(self, shutdown: CancellationToken) {
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(FLUSH_EVERY) => false,
            };
            self.flush().await;
            if stop {
                break;
            }
        }
    }

    async fn flush(&self) {
        let batch = std::mem::take(
            &mut *self
                .inner
                .finished
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if batch.is_empty() {
            return;
        }
        // One pipeline per sale: a room's keys share one slot, different rooms may not.
        let mut by_sale: std::collections::BTreeMap<_, Vec<&Finished>> = Default::default();
        for f in &batch {
            by_sale.entry((f.sale_id, f.key_uid)).or_default().push(f);
        }
        for ((sale_id, key_uid), buyers) in by_sale {
            let key = self.inner.keys.room(sale_id, key_uid).finished;
            let mut pipe = redis::pipe();
            for f in &buyers {
                pipe.cmd("ZADD")
                    .arg(&key)
                    .arg("NX")
                    .arg(f.position)
                    .arg(&f.digest[..])
                    .ignore();
            }
            let expire_at = buyers.iter().map(|f| f.expire_at_ms).max().unwrap_or(0);
            pipe.cmd("PEXPIREAT").arg(&key).arg(expire_at).ignore();
            let mut conn = self.inner.redis.get();
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::warn!(
                    sale_id,
                    buyers = buyers.len(),
                    error.message = %e,
                    "recording finished buyers failed; their places free up when their admissions lapse"
                );
            }
        }
    }
}
