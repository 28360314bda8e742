//! A `--threshold` judged against what a run measured.

use crate::{
    summary::{Latency, Summary},
    threshold::{CountOf, LatencyStat, Metric, Threshold, ThresholdResult},
};

/// The verdict of `t` on the run `s`: the measured value, in words, and whether it holds.
pub(crate) fn judge(t: &Threshold, s: &Summary) -> ThresholdResult {
    let (value, shown) = match t.metric {
        Metric::Latency(stat) => {
            let ms = latency_ms(stat, &s.latency);
            (ms, format!("{ms:.3} ms"))
        }
        Metric::Rps => (
            s.throughput_per_sec,
            format!("{:.0} req/s", s.throughput_per_sec),
        ),
        Metric::Count(c) if t.percent => {
            let n = count(c, s);
            let share = share_of(n, s.requests);
            (share, format!("{share:.3}% ({n} of {})", s.requests))
        }
        Metric::Count(c) => {
            let n = count(c, s);
            (n as f64, n.to_string())
        }
    };
    ThresholdResult {
        threshold: t.text.clone(),
        op: t.op,
        value,
        limit: t.limit,
        shown,
        ok: t.op.holds(value, t.limit),
    }
}

fn latency_ms(stat: LatencyStat, l: &Latency) -> f64 {
    match stat {
        LatencyStat::P50 => l.p50_ms,
        LatencyStat::P90 => l.p90_ms,
        LatencyStat::P99 => l.p99_ms,
        LatencyStat::P999 => l.p999_ms,
        LatencyStat::Max => l.max_ms,
        LatencyStat::Mean => l.mean_ms,
    }
}

fn count(c: CountOf, s: &Summary) -> u64 {
    let o = &s.outcomes;
    match c {
        CountOf::Requests => s.requests,
        CountOf::Reserved => o.reserved,
        CountOf::SoldOut => o.sold_out,
        CountOf::LimitExceeded => o.limit_exceeded,
        CountOf::RateLimited => o.rate_limited,
        CountOf::Errors => o.errors + o.timeouts,
        CountOf::Timeouts => o.timeouts,
        CountOf::Retries => s.retries.retries,
        CountOf::Late => s.schedule.as_ref().map_or(0, |x| x.late),
    }
}

/// `n` as a percentage of `requests` (0 when there were none).
fn share_of(n: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        n as f64 * 100.0 / requests as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(text: &str) -> ThresholdResult {
        let t: Threshold = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        judge(&t, &crate::fixture::summary())
    }

    #[test]
    fn latencies_are_judged_in_milliseconds() {
        let r = judged("p99<5ms");
        assert!(!r.ok, "{r:?}");
        assert_eq!((r.threshold.as_str(), r.limit), ("p99<5ms", 5.0));
        assert!((r.value - 250.111).abs() < 0.01, "{r:?}");
        assert_eq!(r.shown, format!("{:.3} ms", r.value));
        assert!(judged("max<1s").ok);
        assert!(judged("p50 <= 250us").ok, "the median is 0.15 ms");
        assert!(!judged("p90<1ms").ok, "p90 is 12 ms");
        assert!(judged("mean>20ms").ok, "the mean is 26.8 ms");
    }

    #[test]
    fn counts_are_judged_as_numbers_or_shares_of_the_requests() {
        let r = judged("errors<0.1%");
        assert_eq!(
            (r.value, r.ok),
            (40.0, false),
            "errors and timeouts: 4 of 10"
        );
        assert_eq!(r.shown, "40.000% (4 of 10)");
        let r = judged("reserved>=3");
        assert_eq!((r.value, r.shown.as_str(), r.ok), (3.0, "3", true));
        assert!(!judged("reserved>3").ok);
        assert_eq!(judged("late<=20%").value, 20.0);
        assert!(judged("late<=20%").ok);
        assert_eq!(judged("retries<8").value, 7.0);
        assert_eq!(judged("timeouts<1").value, 2.0);
        assert_eq!(judged("requests>=10").value, 10.0);
        assert_eq!(judged("sold_out<1").value, 2.0);
        assert_eq!(judged("limit_exceeded<1").value, 1.0);
        assert_eq!(judged("rate_limited<1").value, 0.0);
        let r = judged("rps>1000");
        assert_eq!((r.shown.as_str(), r.ok), ("3 req/s", false));
    }

    #[test]
    fn a_share_of_no_requests_is_zero() {
        let mut s = crate::fixture::summary();
        s.requests = 0;
        let t: Threshold = "errors<1%".parse().expect("parses");
        let r = judge(&t, &s);
        assert_eq!((r.value, r.ok), (0.0, true), "{r:?}");
    }
}
