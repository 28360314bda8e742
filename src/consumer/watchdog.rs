//! Notices partitions that nobody consumes and tells the member to leave and rejoin the group.
//!
//! Why this exists: a broker's group coordinator can end a rebalance with partitions assigned
//! to no live member. tansu 0.6 does exactly that when a consumer is restarted within the
//! session timeout of its dead predecessor (root cause in docs/ARCHITECTURE.md): the new member
//! is assigned nothing and the group is "stable", so no client ever rebalances again and orders
//! stop reaching MySQL while every process looks healthy. A clean leave and a fresh join makes
//! the coordinator run a new rebalance, which assigns every partition.
//!
//! The rule, evaluated on the group's committed offsets as the lag probe last read them: a
//! partition is *stalled* when it has lag and its committed offset has not moved for the stall
//! time. The member rejoins when a stalled partition is not its own while its own partitions
//! are not stalled (a member that is stuck itself, say on a MySQL outage, gains nothing from a
//! rebalance). Rejoins are spaced by the stall time, doubling while they do not help, so a
//! broker that keeps orphaning partitions costs a rebalance now and then, not a storm.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use crate::stores::kafka::lag::PartitionLag;

/// Longest wait between two rejoins that did not help.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Where a partition was last seen moving.
#[derive(Debug, Clone, Copy)]
struct Progress {
    committed: i64,
    since: Instant,
}

/// Stall detection over successive lag readings.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stall: Duration,
    progress: HashMap<i32, Progress>,
    backoff: Duration,
    next_allowed: Option<Instant>,
}

/// A partition with lag whose committed offset has not moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stalled {
    /// Partition number.
    pub partition: i32,
    /// Messages waiting on it.
    pub lag: i64,
    /// How long its committed offset has not moved.
    pub for_: Duration,
}

impl Watchdog {
    /// A watchdog that calls a partition stalled after `stall` without progress.
    pub fn new(stall: Duration) -> Self {
        Self {
            stall,
            progress: HashMap::new(),
            backoff: stall,
            next_allowed: None,
        }
    }

    /// Records a lag reading taken at `at`. A partition moves when its committed offset
    /// changes; one without lag counts as moving (nothing to do is not a stall).
    pub fn observe(&mut self, lags: &[PartitionLag], at: Instant) {
        for p in lags {
            let moved = match self.progress.get(&p.partition) {
                Some(last) => last.committed != p.committed || p.lag() == 0,
                None => true,
            };
            if moved {
                self.progress.insert(
                    p.partition,
                    Progress {
                        committed: p.committed,
                        since: at,
                    },
                );
            }
        }
    }

    /// Partitions of `lags` that are stalled as of `now`.
    pub fn stalled(&self, lags: &[PartitionLag], now: Instant) -> Vec<Stalled> {
        lags.iter()
            .filter(|p| p.lag() > 0)
            .filter_map(|p| {
                let last = self.progress.get(&p.partition)?;
                let for_ = now.saturating_duration_since(last.since);
                (last.committed == p.committed && for_ >= self.stall).then_some(Stalled {
                    partition: p.partition,
                    lag: p.lag(),
                    for_,
                })
            })
            .collect()
    }

    /// The stalled partitions that justify leaving and rejoining now, given the partitions this
    /// member `owned`; `None` when it should stay. Returning `Some` starts the next backoff.
    pub(crate) fn should_rejoin(
        &mut self,
        lags: &[PartitionLag],
        owned: &BTreeSet<i32>,
        now: Instant,
    ) -> Option<Vec<Stalled>> {
        let stalled = self.stalled(lags, now);
        if stalled.is_empty() {
            self.backoff = self.stall;
            return None;
        }
        if stalled.iter().any(|s| owned.contains(&s.partition)) {
            return None; // stuck itself: a rebalance would not help
        }
        if self.next_allowed.is_some_and(|t| now < t) {
            return None;
        }
        self.next_allowed = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Some(stalled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(10);

    fn lag(partition: i32, committed: i64, high: i64) -> PartitionLag {
        PartitionLag {
            partition,
            committed,
            high,
        }
    }

    fn owned(p: &[i32]) -> BTreeSet<i32> {
        p.iter().copied().collect()
    }

    #[test]
    fn a_member_without_partitions_rejoins_once_lag_stops_moving_for_the_stall_time() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(STALL);
        let lags = [lag(0, 5, 50), lag(1, 7, 90)];
        w.observe(&lags, t0);
        assert_eq!(w.should_rejoin(&lags, &owned(&[]), t0 + STALL / 2), None);
        let at = t0 + STALL;
        w.observe(&lags, at);
        let stalled = w.should_rejoin(&lags, &owned(&[]), at).expect("rejoin");
        assert_eq!(stalled.len(), 2);
        assert_eq!(stalled[0].lag, 45);
    }

    #[test]
    fn progress_or_no_lag_is_not_a_stall() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(STALL);
        w.observe(&[lag(0, 5, 50), lag(1, 90, 90)], t0);
        let later = [lag(0, 6, 60), lag(1, 90, 90)];
        w.observe(&later, t0 + STALL);
        assert_eq!(
            w.should_rejoin(&later, &owned(&[]), t0 + STALL + STALL / 2),
            None
        );
    }

    #[test]
    fn a_partition_idle_without_lag_is_not_stalled_the_moment_messages_arrive() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(STALL);
        // Caught up and quiet for three stall times: its committed offset never moves.
        for k in 0..=3 {
            w.observe(&[lag(0, 90, 90)], t0 + STALL * k);
        }
        // New orders arrive; the consumer has not committed them yet.
        let arrived = t0 + STALL * 3 + Duration::from_secs(1);
        let busy = [lag(0, 90, 95)];
        w.observe(&busy, arrived);
        assert_eq!(w.stalled(&busy, arrived), vec![], "idle is not stuck");
        assert_eq!(w.should_rejoin(&busy, &owned(&[]), arrived), None);
        // Still not moving a whole stall time after they arrived: now it is stalled.
        let later = t0 + STALL * 4;
        w.observe(&busy, later);
        let stalled = w.stalled(&busy, later);
        assert_eq!(stalled.len(), 1, "{stalled:?}");
        assert_eq!((stalled[0].lag, stalled[0].for_), (5, STALL));
    }

    #[test]
    fn a_member_stuck_on_its_own_partitions_does_not_rejoin() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(STALL);
        let lags = [lag(0, 5, 50), lag(1, 7, 90)];
        w.observe(&lags, t0);
        // It holds partition 0, which is stalled too (MySQL down, say): no rejoin.
        assert_eq!(w.should_rejoin(&lags, &owned(&[0]), t0 + STALL * 2), None);
    }

    #[test]
    fn an_orphaned_partition_beside_healthy_own_ones_triggers_a_rejoin() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(STALL);
        w.observe(&[lag(0, 5, 50), lag(1, 7, 90)], t0);
        let later = [lag(0, 40, 60), lag(1, 7, 95)];
        w.observe(&later, t0 + STALL);
        let stalled = w
            .should_rejoin(&later, &owned(&[0]), t0 + STALL)
            .expect("partition 1 is nobody's");
        assert_eq!(stalled.iter().map(|s| s.partition).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn rejoins_that_do_not_help_are_spaced_ever_wider() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(STALL);
        let lags = [lag(0, 5, 50)];
        w.observe(&lags, t0);
        let none = owned(&[]);
        assert!(w.should_rejoin(&lags, &none, t0 + STALL).is_some());
        assert!(
            w.should_rejoin(&lags, &none, t0 + STALL * 2 - Duration::from_millis(1))
                .is_none()
        );
        assert!(w.should_rejoin(&lags, &none, t0 + STALL * 2).is_some());
        // The second wait is twice the first.
        assert!(w.should_rejoin(&lags, &none, t0 + STALL * 3).is_none());
        assert!(w.should_rejoin(&lags, &none, t0 + STALL * 4).is_some());
        // Once nothing is stalled, the spacing starts over.
        let caught_up = [lag(0, 50, 50)];
        w.observe(&caught_up, t0 + STALL * 5);
        assert!(w.should_rejoin(&caught_up, &none, t0 + STALL * 5).is_none());
        assert_eq!(w.backoff, STALL);
    }
}
