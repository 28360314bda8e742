//! Joining: the sale's terms and proof of work checked in memory, then one script call that
//! takes a place once per buyer (joining again answers the same ticket).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{
    QueueAnswer, QueueError, WaitingRoom, place_of,
    rooms::{Room, Terms},
    sold_out_answer,
    ticket::Ticket,
};
use crate::domain::UserId;

/// Buckets of a room's user hashes (a power of two; each stays a small listpack up to about
/// eight million joins).
const BUCKETS: u16 = 16_384;
/// Largest join time a place can hold, in seconds from the room's opening.
const MAX_JOINED_SECS: i64 = (1 << 25) - 1;

/// The 8 bytes a room stores for a buyer, and the bucket they go in.
pub(crate) fn digest(user: &str) -> ([u8; 8], u16) {
    let hash = Sha256::digest(user.as_bytes());
    let mut d = [0; 8];
    d.copy_from_slice(&hash[..8]);
    (d, u16::from_be_bytes([d[0], d[1]]) % BUCKETS)
}

impl WaitingRoom {
    /// Joins `user` to `sale_id`'s queue, or answers the place already taken.
    ///
    /// # Errors
    /// No such sale, an open sale, not open yet, ended, a missing or wrong proof of work, or
    /// Redis failed.
    pub async fn join(
        &self,
        sale_id: u64,
        user: &UserId,
        solution: Option<(&str, &str)>,
    ) -> Result<QueueAnswer, QueueError> {
        let now = Utc::now();
        let room = self.room(sale_id, now.timestamp_millis()).await?;
        if let Err(e) = self.may_join(&room.terms, user, solution, now) {
            self.count_join("refused");
            return Err(e);
        }
        let board = room.board(&self.inner.redis, now.timestamp_millis()).await;
        if board.sold_out {
            self.count_join("sold_out");
            return Ok(sold_out_answer(&board));
        }
        let (created, place, pre_total) = self.take_place(&room, user, now).await?;
        let ticket = Ticket {
            sale_id,
            place: place_of(place),
            user: user.as_ref().to_string(),
        };
        room.saw_draw(pre_total);
        let board = room.with_draw(board);
        self.count_join(if created { "joined" } else { "rejoined" });
        let raw = self.inner.tickets.encode(&ticket);
        let answer = self.answer(&room, &board, &ticket, Some(raw), now.timestamp_millis());
        if created && let Some(eta) = answer.eta_secs {
            self.inner.metrics.queue.eta.observe(eta as f64);
        }
        Ok(answer)
    }

    fn count_join(&self, outcome: &str) {
        let joins = &self.inner.metrics.queue.joins;
        joins.with_label_values(&[outcome]).inc();
    }

    /// The queue is open at `now`, and the join carries a solved challenge when the sale asks
    /// for one.
    fn may_join(
        &self,
        terms: &Terms,
        user: &UserId,
        solution: Option<(&str, &str)>,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        if now < terms.opens_at() {
            return Err(QueueError::NotOpen(terms.opens_at()));
        }
        if now >= terms.ends_at {
            return Err(QueueError::Ended);
        }
        let bits = terms.admission.pow_bits;
        if bits > 0 {
            let now_secs = now.timestamp().max(0) as u64;
            let challenges = &self.inner.challenges;
            challenges.check(solution, terms.sale_id, user.as_ref(), bits, now_secs)?;
        }
        Ok(())
    }

    /// Runs the join script: whether the place is new, the place, and the draw's size (`-1`
    /// before the draw).
    async fn take_place(
        &self,
        room: &Room,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<(bool, i64, i64), QueueError> {
        let terms = &room.terms;
        let (digest, bucket) = digest(user.as_ref());
        let phase = if now < terms.starts_at { "pre" } else { "open" };
        let joined = (now - terms.opens_at())
            .num_seconds()
            .clamp(0, MAX_JOINED_SECS);
        let expire_at =
            (terms.ends_at + chrono::Duration::seconds(self.inner.grace_secs)).timestamp_millis();
        let keys = [room.keys.bucket(bucket), room.keys.counters.clone()];
        let mut conn = self.inner.redis.get();
        let (created, place, pre_total): (i64, i64, i64) = self
            .inner
            .join
            .invoke(&mut conn, &[&keys[0], &keys[1]], |c| {
                c.arg(&digest[..])
                    .arg(phase)
                    .arg(rand::random::<u64>())
                    .arg(joined)
                    .arg(expire_at);
            })
            .await
            .map_err(|e| {
                if e.to_string().contains("FULL") {
                    QueueError::Full
                } else {
                    QueueError::Redis(e)
                }
            })?;
        Ok((created == 1, place, pre_total))
    }
}
