//! What a run measured ([`Summary`], also the `--json` document), gathered from the load's
//! records; its text is in `text`, its latency figures in `figures`.

mod figures;
mod text;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub(crate) use figures::histogram_buckets;
pub use figures::{Bucket, Latency, Schedule};

use crate::{
    args::{Endpoint, Mode, Plan},
    errors::ErrorRow,
    lifecycle::LifecycleReport,
    outcome::{Counts, Kind},
    run::LoadEnd,
    setup::SaleItem,
    stats::{Aggregate, Retries, Second},
    threshold::ThresholdResult,
    verify::Verification,
};

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
    pub(crate) fn latency_per_outcome(&self) -> impl Iterator<Item = (&'static str, &Latency)> {
        Kind::ALL
            .iter()
            .filter_map(|k| Some((k.name(), self.latency_by_outcome.get(k.name())?)))
    }

    /// The thresholds that did not hold.
    pub fn broken_thresholds(&self) -> impl Iterator<Item = &ThresholdResult> {
        self.thresholds.iter().filter(|t| !t.ok)
    }
}

/// The summary of the load of `plan` on `ids` (thresholds and verification come after).
pub(crate) fn summarise(plan: &Plan, ids: SaleItem, agg: Aggregate, end: &LoadEnd) -> Summary {
    let a = &plan.args;
    let total = agg.total;
    let requests = total.counts.total();
    let latency_by_outcome: BTreeMap<&'static str, Latency> = Kind::ALL
        .iter()
        .filter(|k| !total.kind(**k).is_empty())
        .map(|k| (k.name(), Latency::of(total.kind(*k))))
        .collect();
    Summary {
        endpoint: a.endpoint,
        base_url: a.base_url.clone(),
        sale_id: ids.sale,
        item_id: ids.item,
        mode: plan.mode,
        users: a.users,
        elapsed_secs: end.elapsed.as_secs_f64(),
        interrupted: end.interrupted,
        requests,
        throughput_per_sec: requests as f64 / end.elapsed.as_secs_f64().max(1e-9),
        latency: Latency::of(&total.latency),
        latency_by_outcome,
        latency_histogram: histogram_buckets(&total.latency),
        outcomes: total.counts,
        errors: total.errors.rows(),
        retries: total.retries,
        unknown_fate: total.uncertain + end.abandoned,
        schedule: matches!(plan.mode, Mode::OpenLoop { .. })
            .then(|| Schedule::new(requests, total.late, total.max_late_us)),
        thresholds: Vec::new(),
        verification: None,
        reconciliation: None,
        lifecycle: None,
        series: agg.series,
        order_ids: total.order_ids,
    }
}
