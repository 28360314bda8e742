//! Recording while the load runs, and the figures drained from it once a second.
//!
//! Workers record each finished request into one of a few shards, each behind its own mutex
//! (held for a few hundred nanoseconds: a counter and a histogram bump; workers rarely meet on
//! one). Once a second the collector drains every shard into that second's [`Second`] of the
//! series and into the run's cumulative [`Tally`], so the live line, the per-second series of
//! the JSON and the HTML report, and the final summary all come from the same records.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{
    errors::ErrorCounts,
    outcome::{Counts, Kind, Outcome},
};

/// Largest latency recorded, in microseconds (two minutes); longer ones count as this.
pub(crate) const MAX_LATENCY_US: u64 = 120_000_000;

/// Most shards: more would only cost memory (each holds six histograms of ~150 KB).
const MAX_SHARDS: usize = 8;

/// A histogram of microseconds from 1 µs to [`MAX_LATENCY_US`], three significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low).
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant, valid bounds")
}

/// The statuses a buy was retried on, in order (at most `MAX_ATTEMPTS - 1`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Retried {
    statuses: [u16; 8],
    len: usize,
}

impl Retried {
    /// Notes one retry after an answer with `status`.
    pub(crate) fn push(&mut self, status: u16) {
        if let Some(slot) = self.statuses.get_mut(self.len) {
            *slot = status;
            self.len += 1;
        }
    }

    /// The statuses retried on.
    pub(crate) fn statuses(&self) -> &[u16] {
        &self.statuses[..self.len]
    }
}

/// One logical request (a buy with its retries), as a worker hands it over.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    /// The last answer's outcome.
    pub outcome: Option<Outcome>,
    /// From its scheduled (open loop) or actual (closed loop) start to its last answer, in µs.
    pub latency_us: u64,
    /// Answers retried under `--retry-on`.
    pub retried: Retried,
    /// The last answer said `Idempotent-Replayed: true`.
    pub replayed: bool,
    /// Still a `--retry-on` status after the last attempt allowed.
    pub gave_up: bool,
    /// Open loop: how late it started (every connection was busy at its scheduled time).
    pub late_us: Option<u64>,
    /// Attempts whose reservation may stand although the client was not told (see
    /// [`crate::errors::ErrorCause::fate_unknown`]).
    pub uncertain: u64,
    /// The reservation's order id, when collected.
    pub order_id: Option<String>,
}

/// Retries of `--retry-on`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retries {
    /// Retries sent (attempts beyond each buy's first).
    pub retries: u64,
    /// Retries by the status that caused them.
    pub by_status: BTreeMap<u16, u64>,
    /// Final answers the server replayed for an idempotency key it had seen.
    pub replayed: u64,
    /// Buys still answered with a `--retry-on` status at their last allowed attempt.
    pub gave_up: u64,
}

/// Everything counted over some span: a shard's since the last drain, or the whole run's.
pub(crate) struct Tally {
    /// Counts by outcome.
    pub counts: Counts,
    /// Errors and timeouts by cause.
    pub errors: ErrorCounts,
    /// Latency of every request, in µs.
    pub latency: Histogram<u64>,
    /// Latency per outcome class, in [`Kind::ALL`] order.
    pub by_kind: [Histogram<u64>; 5],
    /// Retries.
    pub retries: Retries,
    /// Open loop: requests that started late.
    pub late: u64,
    /// Open loop: the latest start, in µs behind schedule.
    pub max_late_us: u64,
    /// Attempts of unknown fate.
    pub uncertain: u64,
    /// Order ids of the reservations, when collected.
    pub order_ids: Vec<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            counts: Counts::default(),
            errors: ErrorCounts::default(),
            latency: new_histogram(),
            by_kind: std::array::from_fn(|_| new_histogram()),
            retries: Retries::default(),
            late: 0,
            max_late_us: 0,
            uncertain: 0,
            order_ids: Vec::new(),
        }
    }
}

impl Tally {
    /// Counts one logical request.
    pub(crate) fn record(&mut self, r: Record) {
        let Some(outcome) = r.outcome else { return };
        self.counts.add(outcome);
        if let Some(cause) = outcome.cause() {
            self.errors.add(cause, 1);
        }
        let us = r.latency_us.clamp(1, MAX_LATENCY_US);
        let _ = self.latency.record(us);
        if let Some(h) = self.by_kind.get_mut(outcome.kind().index()) {
            let _ = h.record(us);
        }
        for s in r.retried.statuses() {
            self.retries.retries += 1;
            *self.retries.by_status.entry(*s).or_default() += 1;
        }
        self.retries.replayed += u64::from(r.replayed);
        self.retries.gave_up += u64::from(r.gave_up);
        if let Some(late) = r.late_us {
            self.late += 1;
            self.max_late_us = self.max_late_us.max(late);
        }
        self.uncertain += r.uncertain;
        if let Some(id) = r.order_id {
            self.order_ids.push(id);
        }
    }

    /// Adds `other` into this tally and empties `other` (keeping its allocations).
    pub(crate) fn absorb(&mut self, other: &mut Tally) {
        self.counts.merge(&other.counts);
        other.counts = Counts::default();
        self.errors.merge(&other.errors);
        other.errors = ErrorCounts::default();
        absorb_histogram(&mut self.latency, &mut other.latency);
        for (mine, theirs) in self.by_kind.iter_mut().zip(other.by_kind.iter_mut()) {
            absorb_histogram(mine, theirs);
        }
        let r = std::mem::take(&mut other.retries);
        self.retries.retries += r.retries;
        for (s, n) in r.by_status {
            *self.retries.by_status.entry(s).or_default() += n;
        }
        self.retries.replayed += r.replayed;
        self.retries.gave_up += r.gave_up;
        self.late += std::mem::take(&mut other.late);
        self.max_late_us = self.max_late_us.max(std::mem::take(&mut other.max_late_us));
        self.uncertain += std::mem::take(&mut other.uncertain);
        self.order_ids.append(&mut other.order_ids);
    }

    /// The histogram of one outcome class.
    pub(crate) fn kind(&self, kind: Kind) -> &Histogram<u64> {
        &self.by_kind[kind.index()]
    }
}

fn absorb_histogram(into: &mut Histogram<u64>, from: &mut Histogram<u64>) {
    if from.is_empty() {
        return;
    }
    // Same bounds on both sides: adding cannot fail.
    let _ = into.add(&*from);
    from.reset();
}

/// Where workers record.
pub(crate) struct Recorder {
    shards: Vec<Mutex<Tally>>,
    /// Logical requests started and not yet recorded (what an interrupt abandons).
    pub in_flight: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned shard only means another worker panicked mid-record; its counts still hold.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder {
    /// Shards for `workers` workers.
    pub(crate) fn new(workers: u64) -> Self {
        let n = usize::try_from(workers)
            .unwrap_or(MAX_SHARDS)
            .clamp(1, MAX_SHARDS);
        Self {
            shards: (0..n).map(|_| Mutex::new(Tally::default())).collect(),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Records one logical request of worker `worker`.
    pub(crate) fn record(&self, worker: usize, r: Record) {
        lock(&self.shards[worker % self.shards.len()]).record(r);
    }
}

/// One second of the run (the last one may be shorter).
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the start, at this second's end.
    pub t: f64,
    /// Its length in seconds.
    pub secs: f64,
    /// Requests finished in it.
    pub requests: u64,
    /// Requests per second in it.
    pub rps: f64,
    /// Outcomes in it.
    pub outcomes: Counts,
    /// Retries sent in it.
    pub retries: u64,
    /// Requests that started late in it.
    pub late: u64,
    /// Median latency of its requests.
    pub p50_ms: f64,
    /// 99th percentile of its requests.
    pub p99_ms: f64,
}

/// The whole run so far, and its per-second series.
#[derive(Default)]
pub(crate) struct Aggregate {
    /// Cumulative figures.
    pub total: Tally,
    interval: Tally,
    /// One entry per drain.
    pub series: Vec<Second>,
    last: Duration,
}

impl Aggregate {
    /// Takes everything recorded since the last drain; `elapsed` is the time since the start.
    /// Returns the new second of the series.
    pub(crate) fn drain(&mut self, recorder: &Recorder, elapsed: Duration) -> &Second {
        for shard in &recorder.shards {
            self.interval.absorb(&mut lock(shard));
        }
        let secs = elapsed.saturating_sub(self.last).as_secs_f64();
        self.last = elapsed;
        let i = &self.interval;
        let requests = i.counts.total();
        let ms = |q: f64| i.latency.value_at_quantile(q) as f64 / 1000.0;
        self.series.push(Second {
            t: elapsed.as_secs_f64(),
            secs,
            requests,
            rps: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            outcomes: i.counts,
            retries: i.retries.retries,
            late: i.late,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        });
        self.total.absorb(&mut self.interval);
        &self.series[self.series.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorCause;

    fn rec(outcome: Outcome, latency_us: u64) -> Record {
        Record {
            outcome: Some(outcome),
            latency_us,
            ..Record::default()
        }
    }

    #[test]
    fn drains_make_one_second_each_and_add_up_to_the_total() {
        let recorder = Recorder::new(3);
        let mut agg = Aggregate::default();
        for w in 0..3 {
            recorder.record(w, rec(Outcome::Reserved, 1_000));
            recorder.record(w, rec(Outcome::SoldOut, 3_000));
        }
        let mut retried = rec(Outcome::RateLimited, 2_000_000);
        retried.retried.push(429);
        retried.retried.push(503);
        retried.gave_up = true;
        retried.late_us = Some(5_000);
        recorder.record(1, retried);
        let s = agg.drain(&recorder, Duration::from_secs(1)).clone();
        assert_eq!((s.requests, s.outcomes.reserved, s.retries), (7, 3, 2));
        assert_eq!(s.late, 1);
        assert!((s.rps - 7.0).abs() < 1e-9);
        recorder.record(0, rec(Outcome::Error(ErrorCause::Timeout), 5_000_000));
        recorder.record(0, rec(Outcome::Timeout, 5_000_000));
        let s = agg.drain(&recorder, Duration::from_millis(1500)).clone();
        assert_eq!(s.requests, 2);
        assert!((s.rps - 4.0).abs() < 1e-9, "{s:?}");
        assert!(s.p50_ms >= 4_990.0);
        let t = &agg.total;
        assert_eq!(t.counts.total(), 9);
        assert_eq!(t.errors.get(ErrorCause::Timeout), 2);
        assert_eq!(t.latency.len(), 9);
        assert_eq!(t.kind(Kind::SoldOut).len(), 3);
        assert_eq!(t.kind(Kind::Error).len(), 2);
        assert_eq!(t.retries.by_status[&429], 1);
        assert_eq!((t.retries.retries, t.retries.gave_up), (2, 1));
        assert_eq!((t.late, t.max_late_us), (1, 5_000));
        assert_eq!(agg.series.len(), 2);
        // Nothing new: an empty second.
        assert_eq!(agg.drain(&recorder, Duration::from_secs(2)).requests, 0);
    }
}
