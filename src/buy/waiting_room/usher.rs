//! The usher: one leader moves every queued sale's "now serving" forward, several times a
//! second, and publishes the board every instance answers polls from.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{
    WaitingRoom,
    board::{Board, Observed},
    rooms::{Terms, read_board},
};
use crate::stores::{
    mysql::sales,
    redis::{RedisConn, lock::LeaderElection},
};

/// How often the usher moves the queues.
pub const USHER_EVERY: Duration = Duration::from_millis(200);
/// How often the list of queued sales is read from MySQL.
const LIST_EVERY: Duration = Duration::from_secs(2);

impl WaitingRoom {
    /// Moves the queues while this instance leads, until `shutdown`.
    pub async fn run_usher(self, mut leader: LeaderElection, shutdown: CancellationToken) {
        let mut sales: Vec<Terms> = Vec::new();
        let mut listed: Option<Instant> = None;
        let mut failing = false;
        while leader.next_turn(USHER_EVERY, &shutdown).await {
            if listed.is_none_or(|t| t.elapsed() >= LIST_EVERY) {
                match sales::queued_sales(&self.inner.db, Utc::now()).await {
                    Ok(records) => {
                        sales = records.iter().map(Terms::of).collect();
                        listed = Some(Instant::now());
                        self.inner.rooms.prune(Utc::now());
                    }
                    Err(e) => tracing::warn!(error.message = %e, "listing queued sales failed"),
                }
            }
            let (mut waiting, mut active) = (0, 0);
            let mut failed = false;
            for terms in &sales {
                match self.tick(terms).await {
                    Ok(b) => {
                        waiting += b.joined.saturating_sub(b.now_serving);
                        active += b.active;
                    }
                    Err(e) => {
                        failed = true;
                        if !failing {
                            tracing::warn!(sale_id = terms.sale_id, error.message = %e, "moving the queue failed; retrying every tick");
                        }
                    }
                }
            }
            failing = failed;
            let m = &self.inner.metrics.queue;
            m.waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
            m.active.set(i64::try_from(active).unwrap_or(i64::MAX));
        }
        leader.step_down().await;
    }

    /// One step of one sale's queue: read, decide, publish.
    async fn tick(&self, terms: &Terms) -> redis::RedisResult<Board> {
        let keys = self.inner.keys.room(terms.sale_id, terms.key_uid);
        let now = Utc::now();
        let ttl = i64::from(terms.admission.admission_ttl_secs);
        let prev = read_board(&self.inner.redis, &keys).await?;
        let lapsed = prev.lapse(now.timestamp(), ttl);
        let started = now >= terms.starts_at;
        let expire_at =
            (terms.ends_at + chrono::Duration::seconds(self.inner.grace_secs)).timestamp_millis();
        let mut conn = self.inner.redis.get();
        let (pre, seq, drawn, pre_total, seed, finished): (u64, u64, u8, i64, String, u64) = self
            .inner
            .state
            .invoke(&mut conn, &[&keys.counters, &keys.finished], |c| {
                c.arg(if started { "1" } else { "0" })
                    .arg(rand::random::<u64>())
                    .arg(lapsed.expired_before)
                    .arg(expire_at);
            })
            .await?;
        let seen = Observed {
            pre,
            seq,
            drawn: drawn == 1,
            pre_total: u64::try_from(pre_total).unwrap_or(0),
            seed: seed.parse().unwrap_or(0),
            finished,
            remaining: self.remaining(&mut conn, terms).await?,
        };
        let next = lapsed.advance(&seen, &terms.admission, now.timestamp_millis(), started);
        let admitted = next.now_serving.saturating_sub(prev.now_serving);
        self.inner.metrics.queue.admitted.inc_by(admitted);
        let json = serde_json::to_string(&next).unwrap_or_default();
        redis::cmd("SET")
            .arg(&keys.board)
            .arg(json)
            .arg("PXAT")
            .arg(expire_at)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(next)
    }

    /// Units left over the sale's items; `None` while any item's stock is not in Redis.
    async fn remaining(
        &self,
        conn: &mut RedisConn,
        terms: &Terms,
    ) -> redis::RedisResult<Option<i64>> {
        let mut total = 0;
        for item in &terms.items {
            // A sharded item's stock is the sum over its holders (units moving between two
            // are not counted for that instant).
            for holder in item.holders() {
                let key = item.keys(&self.inner.keys, holder).stock;
                let left: Option<i64> = redis::cmd("GET").arg(&key).query_async(conn).await?;
                match left {
                    Some(l) => total += l.max(0),
                    None => return Ok(None),
                }
            }
        }
        Ok(Some(total))
    }
}
