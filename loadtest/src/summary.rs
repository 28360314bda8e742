//! What a run measured ([`Summary`], also the `--json` document) and its text rendering.
//!
//! The first four lines of [`Summary::render`] are stable (`target`, `mode`, `requests`,
//! `latency ms`): `deploy/local/bench.sh` picks lines 3 and 4.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::{
    args::{Endpoint, Mode},
    errors::ErrorRow,
    lifecycle::LifecycleReport,
    outcome::Counts,
    stats::{Retries, Second},
    threshold::ThresholdResult,
    verify::Verification,
};

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
    pub fn of(h: &Histogram<u64>) -> Self {
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

    fn line(&self) -> String {
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
pub fn histogram_buckets(h: &Histogram<u64>) -> Vec<Bucket> {
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
    pub fn new(scheduled: u64, late: u64, max_late_us: u64) -> Self {
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

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What was hit.
    pub endpoint: Endpoint,
    /// Base URL.
    pub base_url: String,
    /// Sale targeted.
    pub sale_id: Option<u64>,
    /// Item targeted.
    pub item_id: Option<u64>,
    /// Open or closed loop.
    pub mode: Mode,
    /// Distinct users.
    pub users: u64,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// True when Ctrl-C (or the caller's cancellation) stopped the run early.
    pub interrupted: bool,
    /// Requests answered (or failed); a buy and its retries count once.
    pub requests: u64,
    /// Requests per second.
    pub throughput_per_sec: f64,
    /// Latency percentiles of every request.
    pub latency: Latency,
    /// Latency per outcome class (`reserved`, `sold_out`, `limit_exceeded`, `rate_limited`,
    /// `error`), for the classes that occurred.
    pub latency_by_outcome: BTreeMap<&'static str, Latency>,
    /// The latency histogram (1-2-5 buckets).
    pub latency_histogram: Vec<Bucket>,
    /// Counts by outcome.
    pub outcomes: Counts,
    /// Errors and timeouts by cause, the most frequent first, with hints.
    pub errors: Vec<ErrorRow>,
    /// `--retry-on` retries.
    pub retries: Retries,
    /// Attempts whose reservation may stand although no answer said so (timeouts, broken
    /// connections, 503 `unconfirmed`, 500, requests abandoned by an interrupt).
    pub unknown_fate: u64,
    /// Open loop: how the schedule was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// `--threshold` verdicts.
    pub thresholds: Vec<ThresholdResult>,
    /// `--verify` verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The reconciliation report fetched by `--verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Value>,
    /// The `--pay-share` step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleReport>,
    /// One entry per second of the run.
    pub series: Vec<Second>,
    /// Order ids of the reservations (collected with `--verify` or `--pay-share`).
    #[serde(skip)]
    pub order_ids: Vec<String>,
}

impl Summary {
    /// True when the run should exit 0: every threshold held, and verification passed or was
    /// not asked for.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.ok)
            && self.verification.as_ref().is_none_or(|v| v.ok)
            && self.lifecycle.as_ref().is_none_or(|l| l.ok)
    }

    /// The per-outcome latencies in outcome order (reserved, sold out, limit exceeded, rate
    /// limited, error).
    pub fn latency_per_outcome(&self) -> impl Iterator<Item = (&'static str, &Latency)> {
        crate::outcome::Kind::ALL
            .iter()
            .filter_map(|k| Some((k.name(), self.latency_by_outcome.get(k.name())?)))
    }

    /// The thresholds that did not hold.
    pub fn broken_thresholds(&self) -> impl Iterator<Item = &ThresholdResult> {
        self.thresholds.iter().filter(|t| !t.ok)
    }

    /// The human-readable summary.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let target = match (self.endpoint, self.sale_id, self.item_id) {
            (Endpoint::Buy, Some(sale), Some(item)) => format!("buy sale {sale} item {item}"),
            (Endpoint::SalePage, Some(sale), _) => format!("sale page {sale}"),
            _ => "healthz".into(),
        };
        let mode = match self.mode {
            Mode::OpenLoop { rate, connections } => {
                format!("open loop, {rate} req/s offered over {connections} connections")
            }
            Mode::ClosedLoop { concurrency } => format!("closed loop, {concurrency} in flight"),
        };
        let _ = writeln!(s, "target      {} ({target})", self.base_url);
        let _ = writeln!(s, "mode        {mode}, {} users", self.users);
        let _ = writeln!(
            s,
            "requests    {} in {:.1} s = {:.0} req/s",
            self.requests, self.elapsed_secs, self.throughput_per_sec
        );
        let _ = writeln!(s, "latency ms  {}", self.latency.line());
        if self.latency_by_outcome.len() > 1 {
            for (kind, l) in self.latency_per_outcome() {
                let _ = writeln!(s, "  {kind:<15} {}  ({})", l.line(), l.count);
            }
        }
        let o = &self.outcomes;
        let _ = writeln!(
            s,
            "outcomes    reserved {}  sold_out {}  limit_exceeded {}  rate_limited {}  errors {}  timeouts {}",
            o.reserved, o.sold_out, o.limit_exceeded, o.rate_limited, o.errors, o.timeouts
        );
        for (i, e) in self.errors.iter().enumerate() {
            let label = if i == 0 { "errors by" } else { "" };
            let _ = write!(s, "{label:<12}{:<24} {:>8}", e.cause, e.count);
            match e.hint {
                Some(h) => {
                    let _ = writeln!(s, "  hint: {h}");
                }
                None => s.push('\n'),
            }
        }
        let r = &self.retries;
        if r.retries > 0 || r.replayed > 0 {
            let by: Vec<String> = r
                .by_status
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            let _ = writeln!(
                s,
                "retries     {} ({}), {} answers replayed, {} buys still refused after the last attempt",
                r.retries,
                by.join(", "),
                r.replayed,
                r.gave_up
            );
        }
        if let Some(sch) = &self.schedule {
            let _ = writeln!(
                s,
                "schedule    {} of {} started late ({:.1}%), up to {:.1} ms behind; none dropped",
                sch.late, sch.scheduled, sch.late_pct, sch.max_late_ms
            );
            if let Some(w) = &sch.warning {
                let _ = writeln!(s, "WARNING     {w}");
            }
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            let label = if i == 0 { "thresholds" } else { "" };
            let _ = writeln!(
                s,
                "{label:<12}{:<7}{} (measured {})",
                if t.ok { "ok" } else { "FAILED" },
                t.threshold,
                t.shown
            );
        }
        if let Some(v) = &self.verification {
            let _ = writeln!(
                s,
                "verify      {}: {} confirmed to this client, {} reservations, {} units persisted, stock {}, consumer {}",
                if v.ok { "OK" } else { "FAILED" },
                v.confirmed,
                v.reservations,
                v.persisted_units,
                v.stock,
                if v.drained { "drained" } else { "NOT drained" }
            );
            for p in &v.problems {
                let _ = writeln!(s, "  problem: {p}");
            }
        }
        if let Some(l) = &self.lifecycle {
            let st = &l.states;
            let _ = writeln!(
                s,
                "lifecycle   {}: paid {}  expired {}  pending_payment {}  cancelled {}  rejected {}; stock back {} (MySQL), {} (Redis)",
                if l.ok { "OK" } else { "FAILED" },
                st["paid"],
                st["expired"],
                st["pending_payment"],
                st["cancelled"],
                st["rejected"],
                l.stock_mysql,
                l.stock_redis.map_or("-".to_string(), |n| n.to_string())
            );
            for p in &l.problems {
                let _ = writeln!(s, "  problem: {p}");
            }
        }
        if self.interrupted {
            let _ = writeln!(
                s,
                "interrupted after {:.1} s: the figures cover the requests answered until then",
                self.elapsed_secs
            );
        }
        s
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
