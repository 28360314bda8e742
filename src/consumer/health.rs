//! What a consumer knows about its own progress: the partitions it holds and the group's lag
//! per partition, read every few seconds. The watchdog acts on it, `/readyz` reports it, and
//! the lag gauge shows it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use super::assignment::Assignment;
use crate::{
    observe::metrics::Metrics,
    stores::kafka::lag::{LagProbe, PartitionLag},
};

/// One reading of the group's committed offsets and the topic's watermarks.
#[derive(Debug, Clone)]
pub(crate) struct LagReading {
    /// When it was taken.
    pub at: Instant,
    /// Per partition.
    pub partitions: Vec<PartitionLag>,
}

impl LagReading {
    /// Messages written and not yet committed, over all partitions.
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(PartitionLag::lag).sum()
    }
}

/// Shared by the consumer loop, its lag monitor and the readiness probe.
#[derive(Clone)]
pub struct ConsumerHealth {
    assignment: Arc<Assignment>,
    lag: Arc<Mutex<Option<LagReading>>>,
    not_ready_after: Duration,
    lag_gauge: prometheus::IntGauge,
}

impl ConsumerHealth {
    /// Health of a member that holds nothing yet. It reports not ready once it has held no
    /// partition for longer than `not_ready_after` while the topic has lag.
    pub fn new(metrics: &Metrics, not_ready_after: Duration) -> Self {
        Self {
            assignment: Assignment::new(metrics.consumer.assigned_partitions.clone()),
            lag: Arc::default(),
            not_ready_after,
            lag_gauge: metrics.consumer.lag.clone(),
        }
    }

    /// The member's assignment (kept by the rebalance callbacks).
    pub(crate) fn assignment(&self) -> &Arc<Assignment> {
        &self.assignment
    }

    /// The latest lag reading, if any succeeded.
    pub(crate) fn latest_lag(&self) -> Option<LagReading> {
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, reading: LagReading) {
        self.lag_gauge.set(reading.total());
        *self.lag.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading);
    }

    /// Why this consumer should not count as ready: it has held no partition for longer than
    /// allowed while messages wait. `None` when it is consuming, or has nothing to consume.
    pub fn stall(&self) -> Option<String> {
        let idle = self.assignment.unassigned_for()?;
        if idle < self.not_ready_after {
            return None;
        }
        let lag = self.latest_lag()?.total();
        (lag > 0).then(|| {
            format!(
                "this consumer has held no partition for {} s while {lag} messages wait",
                idle.as_secs()
            )
        })
    }

    /// Reads the lag with `probe` every `every` until `shutdown`. A failed reading keeps the
    /// previous one (the broker may be down; `/readyz` reports that separately).
    pub(crate) async fn monitor(
        self,
        probe: LagProbe,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let probe = Arc::new(probe);
        loop {
            let p = probe.clone();
            match tokio::task::spawn_blocking(move || p.partitions()).await {
                Ok(Ok(partitions)) => self.record(LagReading {
                    at: Instant::now(),
                    partitions,
                }),
                Ok(Err(e)) => tracing::debug!(error.message = %e, "consumer lag unavailable"),
                Err(_) => break,
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn reading(lag: i64) -> LagReading {
        LagReading {
            at: Instant::now(),
            partitions: vec![PartitionLag {
                partition: 0,
                committed: 0,
                high: lag,
            }],
        }
    }

    #[test]
    fn a_member_without_partitions_is_stalled_only_while_messages_wait() {
        let metrics = Metrics::new();
        let h = ConsumerHealth::new(&metrics, Duration::ZERO);
        assert_eq!(h.stall(), None, "no reading yet: nothing known to wait");
        h.record(reading(0));
        assert_eq!(h.stall(), None);
        h.record(reading(12));
        assert!(h.stall().unwrap().contains("12 messages wait"));
        assert_eq!(metrics.consumer.lag.get(), 12);
        h.assignment().set(BTreeSet::from([0]));
        assert_eq!(h.stall(), None);
    }

    #[test]
    fn a_member_is_given_time_to_be_assigned() {
        let h = ConsumerHealth::new(&Metrics::new(), Duration::from_secs(3600));
        h.record(reading(12));
        assert_eq!(h.stall(), None);
    }
}
