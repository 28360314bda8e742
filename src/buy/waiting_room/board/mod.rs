//! The board: a waiting room's shared state as the usher publishes it (now serving, when each
//! second's admissions happened, stock, sold out), and what it means for one ticket. Every
//! instance reads the board at most once a second and answers polls from it in memory.

mod advance;

use serde::{Deserialize, Serialize};

pub use advance::Observed;

use super::{
    shuffle,
    ticket::{Kind, Place},
};

/// Longest poll interval asked for, in seconds.
const MAX_RETRY_AFTER: u64 = 10;
/// Longest interval asked of pre-queue tickets before the start.
const MAX_PRE_START_RETRY_AFTER: u64 = 30;

/// A waiting room's published state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Board {
    /// The pre-queue was drawn (the sale started); arrival places are known.
    pub drawn: bool,
    /// Joins before the start (the size of the draw).
    pub pre_total: u64,
    /// The draw's seed.
    pub seed: u64,
    /// Joins in all.
    pub joined: u64,
    /// Positions below this are admitted (or lapsed).
    pub now_serving: u64,
    /// Positions below this have lapsed: admitted more than the admission's lifetime ago.
    pub expired_before: u64,
    /// Admitted places neither lapsed nor bought.
    pub active: u64,
    /// Units left in Redis, over all items (`None` before the stock is warmed).
    pub remaining: Option<i64>,
    /// No units left.
    pub sold_out: bool,
    /// Admissions per second, smoothed.
    pub rate: f64,
    /// `(second, now serving at its end)` for each second admissions happened, back to the
    /// admission lifetime: when a position was admitted, so when it lapses.
    pub marks: Vec<(i64, u64)>,
    /// Admissions owed to the next tick (fractions of a place).
    pub carry: f64,
    /// When the usher wrote it, Unix milliseconds.
    pub at_ms: i64,
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In the queue.
    Waiting,
    /// Admitted: the answer carries the admission token.
    Admitted,
    /// No stock now (units may come back from unpaid orders; the queue then moves again).
    SoldOut,
    /// The admission lapsed unused, or the sale ended.
    Expired,
}

impl State {
    /// Its name in answers.
    pub fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Admitted => "admitted",
            State::SoldOut => "sold_out",
            State::Expired => "expired",
        }
    }

    /// Its place in `observe::metrics::POLL_STATES`.
    pub fn index(self) -> usize {
        match self {
            State::Waiting => 0,
            State::Admitted => 1,
            State::SoldOut => 2,
            State::Expired => 3,
        }
    }
}

/// A ticket's standing on a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The state.
    pub state: State,
    /// Place in the queue (0-based), once known.
    pub position: Option<u64>,
    /// Places ahead still waiting.
    pub ahead: Option<u64>,
    /// The board's now serving.
    pub now_serving: u64,
    /// Estimated seconds until admission.
    pub eta_secs: Option<u64>,
    /// Seconds until the next poll is worth it (`Retry-After`).
    pub retry_after: u64,
    /// When the place was admitted, Unix seconds (when admitted).
    pub admitted_at: Option<i64>,
}

/// What a standing is judged against besides the board.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, Unix seconds.
    pub now: i64,
    /// The sale's start, Unix seconds.
    pub starts_at: i64,
    /// The sale's end, Unix seconds.
    pub ends_at: i64,
    /// Seconds an admission stays valid.
    pub ttl: i64,
    /// The sale's admission rate (for estimates before one is measured).
    pub admit_per_sec: u32,
    /// Admitted-but-unbought places per remaining unit.
    pub overbooking: f64,
}

impl Board {
    /// The position of a place, once the draw makes it known.
    pub fn position(&self, place: Place) -> Option<u64> {
        if !self.drawn {
            return None;
        }
        match place.kind() {
            Kind::Arrival => Some(self.pre_total + place.index()),
            Kind::PreQueue => shuffle::position(self.seed, self.pre_total, place.index()),
        }
    }

    /// The second `position` was admitted in (the first mark past it).
    pub fn admitted_at(&self, position: u64) -> Option<i64> {
        if position >= self.now_serving {
            return None;
        }
        let i = self.marks.partition_point(|&(_, ns)| ns <= position);
        Some(self.marks.get(i).map_or(i64::MIN, |&(t, _)| t))
    }

    /// Where the ticket for `place` stands at `clock`.
    pub fn standing(&self, place: Place, clock: &Clock) -> Standing {
        let position = self.position(place);
        let mut s = Standing {
            state: State::Waiting,
            position,
            ahead: None,
            now_serving: self.now_serving,
            eta_secs: None,
            retry_after: 1,
            admitted_at: None,
        };
        if clock.now >= clock.ends_at {
            s.state = State::Expired;
            return s;
        }
        if self.sold_out {
            s.state = State::SoldOut;
            return s;
        }
        let Some(p) = position else {
            let to_start = (clock.starts_at - clock.now).max(0) as u64;
            s.eta_secs = (to_start > 0).then_some(to_start);
            s.retry_after = to_start.clamp(1, MAX_PRE_START_RETRY_AFTER);
            return s;
        };
        if p < self.expired_before {
            s.state = State::Expired;
        } else if p < self.now_serving {
            let at = self.admitted_at(p).unwrap_or(clock.now);
            s.admitted_at = Some(at);
            s.state = if at.saturating_add(clock.ttl) <= clock.now {
                State::Expired
            } else {
                State::Admitted
            };
        } else {
            self.estimate(p, clock, &mut s);
        }
        s
    }

    /// Places ahead, the estimated wait and the poll interval of a waiting position: a place
    /// beyond what the stock can serve polls every second (the sale may sell out any moment,
    /// and it must hear so at once); one within it polls about four times before its turn.
    fn estimate(&self, p: u64, clock: &Clock, s: &mut Standing) {
        let ahead = p - self.now_serving;
        let rate = if self.rate > 0.5 {
            self.rate
        } else {
            f64::from(clock.admit_per_sec)
        };
        let to_start = (clock.starts_at - clock.now).max(0) as u64;
        let eta = to_start + ((ahead + 1) as f64 / rate).ceil() as u64;
        let horizon = self
            .remaining
            .map_or(0.0, |r| r.max(0) as f64 * clock.overbooking);
        s.ahead = Some(ahead);
        s.eta_secs = Some(eta);
        s.retry_after = if ahead as f64 >= horizon {
            1
        } else {
            (eta / 4).clamp(1, MAX_RETRY_AFTER)
        };
    }
}

#[cfg(test)]
mod tests;
