//! The usher's step: from the last board, what the stores hold now and the sale's policy, the
//! next board. Pure, so that every rule (rate, `max_active`, stock × overbooking, lapsed and
//! finished places freeing room, sold out) is tested without a clock or a server.

use super::Board;
use crate::domain::sale::Admission;

/// Weight of the latest tick in the smoothed admission rate.
const RATE_WEIGHT: f64 = 0.1;
/// Longest gap between ticks counted towards the admission budget (a usher that was away,
/// or just took over, does not admit a burst for the time it missed).
const MAX_TICK_MS: i64 = 1_000;

/// What the usher read from the stores this tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Joins before the start.
    pub pre: u64,
    /// Joins from the start on.
    pub seq: u64,
    /// The draw was made.
    pub drawn: bool,
    /// The draw's size.
    pub pre_total: u64,
    /// The draw's seed.
    pub seed: u64,
    /// Buyers who bought with an admission at a position not yet lapsed.
    pub finished: u64,
    /// Units left over all items (`None` before the stock is warmed).
    pub remaining: Option<i64>,
}

impl Board {
    /// Folds the marks whose admissions lapsed by `now_secs` into `expired_before`, so that
    /// the usher counts finished buyers from there (it asks Redis with this board).
    pub fn lapse(&self, now_secs: i64, ttl_secs: i64) -> Board {
        let mut next = self.clone();
        let cut = next
            .marks
            .partition_point(|&(t, _)| t + ttl_secs <= now_secs);
        if let Some(&(_, ns)) = next.marks[..cut].last() {
            next.expired_before = next.expired_before.max(ns);
        }
        next.marks.drain(..cut);
        next
    }

    /// The next board at `now_ms`, `self` being the lapsed previous one ([`Board::lapse`]).
    pub fn advance(
        &self,
        seen: &Observed,
        policy: &Admission,
        now_ms: i64,
        started: bool,
    ) -> Board {
        let mut next = self.clone();
        next.drawn = seen.drawn;
        next.pre_total = seen.pre_total;
        next.seed = seen.seed;
        next.joined = if seen.drawn {
            seen.pre_total + seen.seq
        } else {
            seen.pre
        };
        next.remaining = seen.remaining;
        next.sold_out = seen.remaining.is_some_and(|r| r <= 0);
        let admitted = next.now_serving.saturating_sub(next.expired_before);
        next.active = admitted.saturating_sub(seen.finished);
        let dt = if self.at_ms == 0 {
            0
        } else {
            (now_ms - self.at_ms).clamp(0, MAX_TICK_MS)
        };
        next.at_ms = now_ms;
        let moved = if started && seen.drawn && !next.sold_out {
            next.admit(policy, dt)
        } else {
            next.carry = 0.0;
            0
        };
        if dt > 0 {
            let tick_rate = moved as f64 * 1000.0 / dt as f64;
            next.rate = next.rate * (1.0 - RATE_WEIGHT) + tick_rate * RATE_WEIGHT;
        }
        next
    }

    /// Moves now serving by what the rate allows over `dt_ms`, within the room `max_active`
    /// and the stock leave; returns the places admitted.
    fn admit(&mut self, policy: &Admission, dt_ms: i64) -> u64 {
        let stock_cap = self
            .remaining
            .map_or(0, |r| (r.max(0) as f64 * policy.overbooking).floor() as u64);
        let room = u64::from(policy.max_active)
            .min(stock_cap)
            .saturating_sub(self.active);
        let budget = self.carry + f64::from(policy.admit_per_sec) * dt_ms as f64 / 1000.0;
        let whole = budget.floor() as u64;
        let waiting = self.joined.saturating_sub(self.now_serving);
        let moved = whole.min(room).min(waiting);
        // Fractions carry over only while the rate is what limits admission.
        self.carry = if moved == whole {
            (budget - whole as f64).min(1.0)
        } else {
            0.0
        };
        if moved > 0 {
            self.now_serving += moved;
            self.active += moved;
            let second = self.at_ms / 1000;
            match self.marks.last_mut() {
                Some(last) if last.0 == second => last.1 = self.now_serving,
                _ => self.marks.push((second, self.now_serving)),
            }
        }
        moved
    }
}
