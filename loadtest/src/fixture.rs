//! A summary with something in every block, for the tests of what reads it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::{
    args::{Endpoint, Mode},
    errors::{ErrorCause, ErrorCounts},
    outcome::Counts,
    stats::{Retries, Second, new_histogram},
    summary::{Latency, Schedule, Summary, histogram_buckets},
};

fn histogram(us: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for v in us {
        h.record(*v).expect("within the bounds");
    }
    h
}

fn second(t: f64, secs: f64, outcomes: Counts) -> Second {
    let requests = outcomes.total();
    Second {
        t,
        secs,
        requests,
        rps: requests as f64 / secs,
        outcomes,
        retries: 1,
        late: 0,
        p50_ms: 0.1 * t,
        p99_ms: 3.5 * t,
    }
}

fn counts(reserved: u64, sold_out: u64, errors: u64) -> Counts {
    Counts {
        reserved,
        sold_out,
        errors,
        ..Counts::default()
    }
}

/// Ten buys in 3.25 s: 3 reserved, 2 sold out, 1 over the limit, 2 timeouts, 2 errors; two
/// late starts; seven retries; no thresholds, verification or lifecycle yet.
pub(crate) fn summary() -> Summary {
    let all = histogram(&[40, 60, 90, 100, 150, 900, 1_000, 4_000, 12_000, 250_000]);
    let by_outcome = BTreeMap::from([
        ("reserved", Latency::of(&histogram(&[60, 90, 100]))),
        ("sold_out", Latency::of(&histogram(&[150, 900]))),
        ("error", Latency::of(&histogram(&[250_000]))),
    ]);
    let mut errors = ErrorCounts::default();
    errors.add(ErrorCause::status(401, br#"{"code":"unauthorized"}"#), 2);
    errors.add(ErrorCause::Timeout, 2);
    Summary {
        endpoint: Endpoint::Buy,
        base_url: "http://127.0.0.1:8080".into(),
        sale_id: Some(12),
        item_id: Some(34),
        mode: Mode::OpenLoop {
            rate: 500,
            connections: 16,
        },
        users: 1000,
        elapsed_secs: 3.25,
        interrupted: false,
        requests: 10,
        throughput_per_sec: 10.0 / 3.25,
        latency: Latency::of(&all),
        latency_by_outcome: by_outcome,
        latency_histogram: histogram_buckets(&all),
        outcomes: Counts {
            reserved: 3,
            sold_out: 2,
            limit_exceeded: 1,
            rate_limited: 0,
            timeouts: 2,
            errors: 2,
        },
        errors: errors.rows(),
        retries: Retries {
            retries: 7,
            by_status: BTreeMap::from([(429, 2), (503, 5)]),
            replayed: 4,
            gave_up: 1,
        },
        unknown_fate: 3,
        schedule: Some(Schedule::new(10, 2, 4_500)),
        thresholds: Vec::new(),
        verification: None,
        reconciliation: None,
        lifecycle: None,
        series: vec![
            second(1.0, 1.0, counts(2, 1, 1)),
            second(2.0, 1.0, counts(1, 1, 1)),
            second(3.0, 1.0, counts(0, 0, 2)),
            second(3.25, 0.25, counts(0, 0, 1)),
        ],
        order_ids: vec!["order-1".into(), "order-2".into(), "order-3".into()],
    }
}
