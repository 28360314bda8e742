//! The figures of a latency histogram: its percentiles, its 1-2-5 bars, and how an open loop
//! kept to its schedule.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds.
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }

    /// `p50 … mean …` in milliseconds, two decimals.
    pub(super) fn line(&self) -> String {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.mean_ms
        )
    }
}

/// One bar of the latency histogram: requests slower than the previous bar's bound and at
/// most `up_to_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Upper bound, inclusive, in milliseconds.
    pub up_to_ms: f64,
    /// Requests in it.
    pub count: u64,
}

/// Bars on a 1-2-5 scale from 50 µs up to the slowest request.
pub(crate) fn histogram_buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut bounds_us = Vec::new();
    let mut decade = 10u64;
    'outer: loop {
        for m in [1, 2, 5] {
            let b = decade * m;
            if b >= 50 {
                bounds_us.push(b);
            }
            if b >= h.max() {
                break 'outer;
            }
        }
        decade *= 10;
    }
    let mut low = 0u64;
    let mut out: Vec<Bucket> = bounds_us
        .into_iter()
        .map(|high| {
            let count = h.count_between(low, high) - if low == 0 { 0 } else { h.count_at(low) };
            low = high;
            Bucket {
                up_to_ms: high as f64 / 1000.0,
                count,
            }
        })
        .collect();
    while out.first().is_some_and(|b| b.count == 0) && out.len() > 1 {
        out.remove(0);
    }
    out
}

/// How an open-loop run kept to its schedule. Requests are never dropped: when every
/// connection is busy at a request's scheduled time it waits for the first free one, starts
/// late, and its latency counts from the scheduled time.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// Requests scheduled and sent.
    pub scheduled: u64,
    /// Requests that started more than 1 ms after their scheduled time because every
    /// connection was busy then.
    pub late: u64,
    /// `late` as a percentage of `scheduled`.
    pub late_pct: f64,
    /// The latest start, in milliseconds behind schedule.
    pub max_late_ms: f64,
    /// Set when more than 1% started late.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Schedule {
    /// The schedule of `scheduled` requests of which `late` started late.
    pub(crate) fn new(scheduled: u64, late: u64, max_late_us: u64) -> Self {
        let late_pct = if scheduled == 0 {
            0.0
        } else {
            late as f64 * 100.0 / scheduled as f64
        };
        let max_late_ms = max_late_us as f64 / 1000.0;
        let warning = (late_pct > 1.0).then(|| {
            format!(
                "{late} of {scheduled} requests ({late_pct:.1}%) started late, up to {max_late_ms:.1} ms behind schedule: every connection was busy; the rate was not offered on time (raise --connections or lower --rate)"
            )
        });
        Self {
            scheduled,
            late,
            late_pct,
            max_late_ms,
            warning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_has_1_2_5_buckets_that_add_up() {
        let mut h = crate::stats::new_histogram();
        for us in [40, 60, 90, 100, 150, 900, 1_000, 4_000, 12_000] {
            h.record(us).unwrap();
        }
        let b = histogram_buckets(&h);
        let bounds: Vec<f64> = b.iter().map(|b| b.up_to_ms).collect();
        assert_eq!(bounds, [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 9);
        assert_eq!(b[0].count, 1); // 40 µs
        assert_eq!(b[1].count, 3); // 60, 90, 100
        assert!(histogram_buckets(&crate::stats::new_histogram()).is_empty());
    }

    #[test]
    fn a_schedule_warns_above_one_percent_late() {
        assert!(Schedule::new(1000, 10, 3_000).warning.is_none());
        let s = Schedule::new(1000, 11, 3_000);
        assert!(
            s.warning
                .unwrap()
                .contains("11 of 1000 requests (1.1%) started late")
        );
        assert_eq!(s.max_late_ms, 3.0);
    }
}
