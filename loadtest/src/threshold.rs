//! Pass/fail criteria on a run's figures, k6-style: `--threshold 'p99<5ms'`,
//! `--threshold 'errors<0.1%'`, `--threshold 'rps>1000'`, `--threshold 'reserved>=100'`.
//!
//! Grammar: `METRIC OP VALUE[UNIT]`, spaces allowed around each part.
//! - latency metrics `p50`, `p90`, `p99`, `p999` (or `p99.9`), `max`, `mean`: a unit is
//!   required, `us`, `ms` or `s`;
//! - `rps`: requests per second over the run, no unit;
//! - counts `requests`, `reserved`, `sold_out`, `limit_exceeded`, `rate_limited`, `errors`
//!   (errors and timeouts together), `timeouts`, `retries`, `late`: a number, or a share of the
//!   requests with `%`;
//! - `OP` is one of `<`, `<=`, `>`, `>=`.

use std::{fmt, str::FromStr};

use serde::Serialize;

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    /// A latency percentile (0.5, 0.9, 0.99, 0.999), the maximum (1.0) or the mean.
    Latency(LatencyStat),
    /// Requests per second over the run.
    Rps,
    /// A count of requests.
    Count(CountOf),
}

/// A latency statistic of the overall histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LatencyStat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Slowest.
    Max,
    /// Mean.
    Mean,
}

/// A count in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountOf {
    /// Requests answered (or failed).
    Requests,
    /// Reservations.
    Reserved,
    /// Sold out.
    SoldOut,
    /// Over the per-user limit.
    LimitExceeded,
    /// 429.
    RateLimited,
    /// Errors and timeouts.
    Errors,
    /// Timeouts.
    Timeouts,
    /// Retries sent.
    Retries,
    /// Open loop: requests started late.
    Late,
}

/// The comparison that must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    /// True when `value OP limit`.
    pub(crate) fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
        }
    }
}

/// One parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What is measured.
    pub(crate) metric: Metric,
    /// How it compares.
    pub(crate) op: Op,
    /// The limit: milliseconds for latencies, a count, a percentage (with `percent`), or
    /// requests per second.
    pub(crate) limit: f64,
    /// The limit is a share of the requests, in percent.
    pub(crate) percent: bool,
    /// As written.
    pub(crate) text: String,
}

/// A threshold that cannot be parsed, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid threshold '{text}': {reason}")]
pub struct ThresholdError {
    /// As written.
    pub(crate) text: String,
    /// What is wrong.
    pub(crate) reason: String,
}

const METRICS: &str = "p50, p90, p99, p999, max, mean, rps, requests, reserved, sold_out, \
                       limit_exceeded, rate_limited, errors, timeouts, retries, late";

fn metric_of(name: &str) -> Option<Metric> {
    use CountOf as C;
    use LatencyStat as L;
    Some(match name {
        "p50" => Metric::Latency(L::P50),
        "p90" => Metric::Latency(L::P90),
        "p99" => Metric::Latency(L::P99),
        "p999" | "p99.9" => Metric::Latency(L::P999),
        "max" => Metric::Latency(L::Max),
        "mean" | "avg" => Metric::Latency(L::Mean),
        "rps" => Metric::Rps,
        "requests" => Metric::Count(C::Requests),
        "reserved" => Metric::Count(C::Reserved),
        "sold_out" => Metric::Count(C::SoldOut),
        "limit_exceeded" => Metric::Count(C::LimitExceeded),
        "rate_limited" => Metric::Count(C::RateLimited),
        "errors" => Metric::Count(C::Errors),
        "timeouts" => Metric::Count(C::Timeouts),
        "retries" => Metric::Count(C::Retries),
        "late" => Metric::Count(C::Late),
        _ => return None,
    })
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ThresholdError {
            text: text.to_string(),
            reason,
        };
        let at = text
            .find(['<', '>'])
            .ok_or_else(|| err("no comparison: write METRIC<VALUE, e.g. p99<5ms".into()))?;
        let name = text[..at].trim().to_ascii_lowercase();
        let (op, value) = comparison(&text[at..]).ok_or_else(|| err("no comparison".into()))?;
        let metric = metric_of(&name).ok_or_else(|| {
            err(if name.is_empty() {
                format!("no metric before the comparison; one of {METRICS}")
            } else {
                format!("unknown metric '{name}'; one of {METRICS}")
            })
        })?;
        let (number, unit) = number_and_unit(value.trim()).map_err(err)?;
        let (limit, percent) = limit_of(metric, &name, number, unit).map_err(err)?;
        Ok(Threshold {
            metric,
            op,
            limit,
            percent,
            text: text.split_whitespace().collect(),
        })
    }
}

/// The comparison at the start of `rest` and what follows it.
fn comparison(rest: &str) -> Option<(Op, &str)> {
    [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
        .into_iter()
        .find_map(|(symbol, op)| Some((op, rest.strip_prefix(symbol)?)))
}

/// `5ms` as `(5.0, "ms")`.
fn number_and_unit(value: &str) -> Result<(f64, &str), String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number = value[..split]
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("'{value}' does not start with a number"))?;
    Ok((number, value[split..].trim()))
}

/// The limit in the metric's unit (milliseconds for latencies), and whether it is a share of
/// the requests; `name` is the metric as written, for the error.
fn limit_of(metric: Metric, name: &str, number: f64, unit: &str) -> Result<(f64, bool), String> {
    Ok(match (metric, unit) {
        (Metric::Latency(_), "us" | "µs") => (number / 1000.0, false),
        (Metric::Latency(_), "ms") => (number, false),
        (Metric::Latency(_), "s") => (number * 1000.0, false),
        (Metric::Latency(_), "") => {
            return Err(format!(
                "a latency needs a unit: us, ms or s (e.g. {name}<{number}ms)"
            ));
        }
        (Metric::Latency(_), u) => return Err(format!("unknown unit '{u}'; use us, ms or s")),
        (Metric::Rps | Metric::Count(_), "") => (number, false),
        (Metric::Count(_), "%") if number > 100.0 => {
            return Err("a share is at most 100%".into());
        }
        (Metric::Count(_), "%") => (number, true),
        (Metric::Rps, u) => {
            return Err(format!(
                "rps takes a plain number of requests per second, not '{u}'"
            ));
        }
        (Metric::Count(_), u) => {
            return Err(format!(
                "a count takes a number, or a share of the requests with %, not '{u}'"
            ));
        }
    })
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A threshold judged against a run.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdResult {
    /// As written (spaces removed).
    pub threshold: String,
    /// The comparison.
    pub op: Op,
    /// The measured value, in the threshold's unit (ms, a count, a percentage, req/s).
    pub value: f64,
    /// The limit, in the same unit.
    pub limit: f64,
    /// The measured value in words (`3.21 ms`, `2.50% (25 of 1000)`, `1520 req/s`).
    pub shown: String,
    /// True when the comparison holds.
    pub ok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Threshold {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn e(s: &str) -> String {
        s.parse::<Threshold>().unwrap_err().to_string()
    }

    #[test]
    fn latencies_parse_into_milliseconds() {
        let t = p("p99<5ms");
        assert_eq!(t.metric, Metric::Latency(LatencyStat::P99));
        assert_eq!((t.op, t.limit, t.percent), (Op::Lt, 5.0, false));
        assert_eq!(p("p50 <= 250us").limit, 0.25);
        assert_eq!(p("max<2s").limit, 2000.0);
        assert_eq!(p("p99.9<10ms").metric, Metric::Latency(LatencyStat::P999));
        assert_eq!(p("p999<10ms").metric, Metric::Latency(LatencyStat::P999));
        assert_eq!(p("P90 < 1.5ms").limit, 1.5);
        assert_eq!(p("mean<1ms").metric, Metric::Latency(LatencyStat::Mean));
        assert_eq!(p("p99 < 5 ms").to_string(), "p99<5ms");
    }

    #[test]
    fn counts_take_a_number_or_a_share_and_rps_a_rate() {
        let t = p("errors<0.1%");
        assert_eq!(t.metric, Metric::Count(CountOf::Errors));
        assert_eq!((t.op, t.limit, t.percent), (Op::Lt, 0.1, true));
        let t = p("reserved>=100");
        assert_eq!((t.op, t.limit, t.percent), (Op::Ge, 100.0, false));
        let t = p("rps>1000");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Rps, Op::Gt, 1000.0));
        assert_eq!(p("timeouts<=0").op, Op::Le);
        assert_eq!(p("late<1%").metric, Metric::Count(CountOf::Late));
        assert_eq!(p("retries<10").metric, Metric::Count(CountOf::Retries));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("p99", "no comparison"),
            ("p98<5ms", "unknown metric 'p98'"),
            ("<5ms", "no metric"),
            ("p99<5", "needs a unit"),
            ("p99<5h", "unknown unit 'h'"),
            ("p99<ms", "does not start with a number"),
            ("errors<5ms", "a count takes a number"),
            ("errors<101%", "at most 100%"),
            ("rps>5%", "rps takes a plain number"),
            ("p99=5ms", "no comparison"),
            ("p99<<5ms", "does not start with a number"),
            ("p99<", "does not start with a number"),
        ] {
            let error = e(text);
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
