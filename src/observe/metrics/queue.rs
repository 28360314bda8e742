//! The waiting room: joins, polls by answer, places waiting and active, admissions, and the
//! waits estimated against the waits buyers really had.

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

use super::Registrar;

/// Wait buckets in seconds, from a second to an hour.
const WAIT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The answers a poll counts, in the order of [`QueueMetrics::polls`].
pub const POLL_STATES: [&str; 4] = ["waiting", "admitted", "sold_out", "expired"];

/// The waiting room.
pub struct QueueMetrics {
    /// Joins by outcome (`joined`, `rejoined`, `sold_out`, `refused`).
    pub joins: IntCounterVec,
    /// Polls by answer, resolved once (a poll must cost as little as a health check), in the
    /// order of [`POLL_STATES`].
    pub polls: [IntCounter; 4],
    /// Places waiting over every queued sale, as the usher last saw them.
    pub waiting: IntGauge,
    /// Admitted places neither lapsed nor bought, over every queued sale.
    pub active: IntGauge,
    /// Places admitted.
    pub admitted: IntCounter,
    /// The wait estimated at each new join.
    pub eta: Histogram,
    /// The wait each buyer really had, join to admission (recorded when they buy).
    pub waited: Histogram,
}

impl QueueMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        let polls = r.counter_vec(
            "queue_polls_total",
            "Waiting-room polls by answer",
            &["state"],
        );
        Self {
            joins: r.counter_vec(
                "queue_joins_total",
                "Waiting-room joins by outcome (joined, rejoined, sold_out, refused)",
                &["outcome"],
            ),
            polls: POLL_STATES.map(|s| polls.with_label_values(&[s])),
            waiting: r.gauge(
                "queue_waiting",
                "Places waiting in every queued sale, as the usher last saw them",
            ),
            active: r.gauge(
                "queue_active",
                "Admitted places neither lapsed nor bought, over every queued sale",
            ),
            admitted: r.counter("queue_admitted_total", "Places admitted by the usher"),
            eta: r.histogram(
                "queue_eta_seconds",
                "Wait estimated at each new join",
                WAIT_BUCKETS.to_vec(),
            ),
            waited: r.histogram(
                "queue_waited_seconds",
                "Wait buyers really had, join to admission, recorded when they buy",
                WAIT_BUCKETS.to_vec(),
            ),
        }
    }
}
