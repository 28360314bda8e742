//! Which partitions this group member holds, kept by librdkafka's rebalance callbacks, and the
//! client context that logs rebalances and commits (the events an operator needs at 3 a.m.).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, ConsumerContext, Rebalance},
    error::{KafkaError, KafkaResult},
};

use crate::stores::kafka::context::QuietContext;

/// The partitions held now, and since when none have been.
#[derive(Debug)]
struct State {
    owned: BTreeSet<i32>,
    /// Set while `owned` is empty: when it became (or started) empty.
    unassigned_since: Option<Instant>,
}

/// The member's current assignment, shared with the watchdog and the readiness probe.
#[derive(Debug)]
pub(crate) struct Assignment {
    state: Mutex<State>,
    gauge: prometheus::IntGauge,
}

impl Assignment {
    /// A member that holds nothing yet; `gauge` shows how many partitions it holds.
    pub fn new(gauge: prometheus::IntGauge) -> Arc<Self> {
        gauge.set(0);
        Arc::new(Self {
            state: Mutex::new(State {
                owned: BTreeSet::new(),
                unassigned_since: Some(Instant::now()),
            }),
            gauge,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the held partitions.
    pub fn set(&self, owned: BTreeSet<i32>) {
        let mut state = self.lock();
        self.gauge.set(owned.len() as i64);
        state.unassigned_since = match (owned.is_empty(), state.unassigned_since) {
            (false, _) => None,
            (true, Some(since)) => Some(since),
            (true, None) => Some(Instant::now()),
        };
        state.owned = owned;
    }

    /// The partitions held now.
    pub(crate) fn owned(&self) -> BTreeSet<i32> {
        self.lock().owned.clone()
    }

    /// How long this member has held no partition (`None` while it holds some).
    pub(crate) fn unassigned_for(&self) -> Option<Duration> {
        self.lock().unassigned_since.map(|since| since.elapsed())
    }
}

/// Logs rebalances and failed commits, and records the assignment.
pub(crate) struct GroupContext {
    assignment: Arc<Assignment>,
    quiet: QuietContext,
}

impl GroupContext {
    /// A context recording into `assignment`.
    pub fn new(assignment: Arc<Assignment>) -> Self {
        Self {
            assignment,
            quiet: QuietContext::default(),
        }
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.quiet.report_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.quiet.report_error(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!(partitions = ?partitions(tpl), "partitions revoked");
            self.assignment.set(BTreeSet::new());
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let owned: BTreeSet<i32> = partitions(tpl).into_iter().collect();
                if owned.is_empty() {
                    tracing::warn!(
                        "partitions assigned: none; this member consumes nothing until the next rebalance"
                    );
                } else {
                    tracing::info!(partitions = ?owned, "partitions assigned");
                }
                self.assignment.set(owned);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error.message = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(error.message = %e, offsets = ?partitions(offsets), "offset commit failed; the batch will be redelivered and deduplicated");
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_unassigned_from_its_start_until_it_gets_a_partition() {
        let gauge = prometheus::IntGauge::new("g", "g").unwrap();
        let a = Assignment::new(gauge.clone());
        assert!(a.unassigned_for().is_some());
        a.set(BTreeSet::from([0, 1]));
        assert_eq!(a.unassigned_for(), None);
        assert_eq!(gauge.get(), 2);
        a.set(BTreeSet::new());
        assert!(a.unassigned_for().is_some());
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn an_empty_assignment_after_an_empty_one_keeps_the_first_time() {
        let a = Assignment::new(prometheus::IntGauge::new("g", "g").unwrap());
        std::thread::sleep(Duration::from_millis(20));
        a.set(BTreeSet::new());
        assert!(a.unassigned_for().unwrap() >= Duration::from_millis(20));
    }
}
