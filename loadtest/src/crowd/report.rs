//! The crowd's figures ([`CrowdReport`], also the `--json` document), computed from what each
//! user saw: queue times, fairness of the order, randomness of the pre-queue draw, requests
//! per unit sold, waits after the sell-out. Their text is in `text`.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{
    fairness::{self, ChiSquare},
    open::OpenCrowd,
    sale::QueuedSale,
    user::{Outcome, Requests, UserRecord},
};
use crate::{args_crowd::CrowdPlan, summary::Latency};

/// Everything a crowd run measured.
#[derive(Debug, Clone, Serialize)]
pub struct CrowdReport {
    /// Base URL.
    pub base_url: String,
    /// The queued sale.
    pub sale_id: u64,
    /// Its item.
    pub item_id: u64,
    /// Users in the crowd.
    pub users: u64,
    /// Users scheduled to join before the start.
    pub pre_queue_users: u64,
    /// Users scheduled to join after it.
    pub post_start_users: u64,
    /// Shared connections.
    pub connections: u64,
    /// Wall time of the queued crowd in seconds.
    pub elapsed_secs: f64,
    /// Ctrl-C (or the caller's cancellation) stopped the run early.
    pub interrupted: bool,
    /// Units reserved (202s).
    pub units_sold: u64,
    /// How the users' visits ended.
    pub outcomes: Outcomes,
    /// Join sent → admitted, of the admitted users.
    pub queue_time: Option<Latency>,
    /// Post-start joiners: join order against admission order.
    pub fairness: Option<Fairness>,
    /// Pre-queue joiners: join order against the drawn position.
    pub pre_queue: Option<PreQueue>,
    /// Requests of the queued crowd by kind.
    pub requests: Requests,
    /// All of them.
    pub requests_total: u64,
    /// `requests_total` / `units_sold` (none when nothing sold).
    pub requests_per_unit_sold: Option<f64>,
    /// `requests_total` / `users`.
    pub requests_per_user: f64,
    /// Waits after the sell-out of the users told sold out.
    pub sellout: Option<SelloutWaits>,
    /// `--compare-open`: the same crowd on a sale without a waiting room.
    pub open: Option<OpenCrowd>,
    /// Open requests per unit sold / queued requests per unit sold.
    pub open_to_queue_ratio: Option<f64>,
    /// Requests without an answer (refused or broken connections, timeouts), both crowds.
    pub transport_failures: u64,
    /// `transport_failures` / every request sent, both crowds.
    pub transport_failure_share: f64,
    /// `transport_failure_share` at most [`MAX_FAILURE_SHARE`]: the exit code is 0.
    pub passed: bool,
}

/// How the users' visits ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcomes {
    /// Bought a unit.
    pub reserved: u64,
    /// Told sold out (by the join, a poll or the buy).
    pub sold_out: u64,
    /// The admission lapsed.
    pub expired: u64,
    /// Final refusals, by step, status and code (e.g. `buy 403 admission_expired`).
    pub refused: BTreeMap<String, u64>,
    /// Gave up: no answer, attempt after attempt, or an answer that made no sense.
    pub failed: u64,
    /// Still going when the crowd stopped.
    pub unfinished: u64,
}

/// Kendall's tau of the post-start joiners.
#[derive(Debug, Clone, Serialize)]
pub struct Fairness {
    /// Post-start joiners compared (each with a position: admitted, or told one by a poll).
    pub users: u64,
    /// Between the order of sending the joins and the order of admission (the order of the
    /// positions): 1 is first come, first served.
    pub kendall_tau: f64,
}

/// The randomness of the pre-queue draw.
#[derive(Debug, Clone, Serialize)]
pub struct PreQueue {
    /// Pre-queue joiners with a position (from the admission token, else from a poll).
    pub users: u64,
    /// Of them, those whose join was answered with a position already (joined after the draw:
    /// their place is not drawn).
    pub joined_with_position: u64,
    /// Between join order and position: near 0 for a uniform draw.
    pub kendall_tau: f64,
    /// `kendall_tau` over its standard deviation under a uniform draw.
    pub z_score: f64,
    /// Join-order deciles against position deciles.
    pub chi_square: Option<ChiSquare>,
    /// |z| < 3.29 (two-sided p > 0.001) and the chi-square passes.
    pub uniform: bool,
}

/// How long the users told sold out had waited for it since the sell-out.
#[derive(Debug, Clone, Serialize)]
pub struct SelloutWaits {
    /// The last 202 of the queued crowd, on the crowd's clock, in milliseconds.
    pub sellout_at_ms: f64,
    /// Users told sold out.
    pub users: u64,
    /// Longest wait (told − sell-out, at least 0), milliseconds.
    pub max_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Users who waited more than 2 s.
    pub over_2s: u64,
}

/// Above this share of requests without an answer, the run fails (exit code 1).
pub(crate) const MAX_FAILURE_SHARE: f64 = 0.01;
/// The longest queue time the histogram tells apart (a day, in microseconds); longer ones
/// count as this.
const MAX_QUEUE_TIME_US: u64 = 86_400_000_000;
/// The z-score beyond which the draw's tau is not uniform (two-sided p = 0.001).
const Z_LIMIT: f64 = 3.29;

/// What ran, for [`build`].
pub(crate) struct Ran<'a> {
    /// The plan.
    pub plan: &'a CrowdPlan,
    /// The queued sale.
    pub sale: &'a QueuedSale,
    /// What each user of the queued crowd saw.
    pub records: &'a [UserRecord],
    /// The open crowd's figures.
    pub open: Option<OpenCrowd>,
    /// Wall time of the queued crowd.
    pub elapsed: Duration,
    /// Requests without an answer, both crowds.
    pub failures: u64,
    /// Stopped early.
    pub interrupted: bool,
    /// Users scheduled before the start.
    pub pre_queue_users: u64,
}

/// The figures of what ran.
pub(crate) fn build(ran: &Ran<'_>) -> CrowdReport {
    let (a, records) = (&ran.plan.args, ran.records);
    let outcomes = outcomes(records);
    let units_sold = outcomes.reserved;
    let requests = records
        .iter()
        .fold(Requests::default(), |t, r| t.plus(&r.requests));
    let requests_total = requests.total();
    let per_unit = |requests: u64, units: u64| (units > 0).then(|| requests as f64 / units as f64);
    let requests_per_unit_sold = per_unit(requests_total, units_sold);
    let open_to_queue_ratio = ran
        .open
        .as_ref()
        .and_then(|o| Some(o.requests_per_unit_sold? / requests_per_unit_sold?));
    let all_requests = requests_total + ran.open.as_ref().map_or(0, |o| o.requests);
    let transport_failure_share = ran.failures as f64 / all_requests.max(1) as f64;
    CrowdReport {
        base_url: a.base_url.clone(),
        sale_id: ran.sale.sale,
        item_id: ran.sale.item,
        users: a.users,
        pre_queue_users: ran.pre_queue_users,
        post_start_users: a.users - ran.pre_queue_users.min(a.users),
        connections: a.connections,
        elapsed_secs: ran.elapsed.as_secs_f64(),
        interrupted: ran.interrupted,
        units_sold,
        outcomes,
        queue_time: queue_time(records),
        fairness: fairness(records),
        pre_queue: pre_queue(records),
        requests,
        requests_total,
        requests_per_unit_sold,
        requests_per_user: requests_total as f64 / a.users.max(1) as f64,
        sellout: sellout(records),
        open: ran.open.clone(),
        open_to_queue_ratio,
        transport_failures: ran.failures,
        transport_failure_share,
        passed: transport_failure_share <= MAX_FAILURE_SHARE,
    }
}

/// The outcomes of `records`.
pub(crate) fn outcomes(records: &[UserRecord]) -> Outcomes {
    let mut o = Outcomes::default();
    for r in records {
        match &r.outcome {
            Outcome::Reserved => o.reserved += 1,
            Outcome::SoldOut => o.sold_out += 1,
            Outcome::Expired => o.expired += 1,
            Outcome::Refused(why) => *o.refused.entry(why.clone()).or_default() += 1,
            Outcome::Failed => o.failed += 1,
            Outcome::Unfinished => o.unfinished += 1,
        }
    }
    o
}

/// Join sent → admitted of the admitted users, in microseconds.
pub(crate) fn queue_time(records: &[UserRecord]) -> Option<Latency> {
    let mut h = Histogram::<u64>::new_with_bounds(1, MAX_QUEUE_TIME_US, 3).ok()?;
    for r in records {
        if let (Some(sent), Some(admitted)) = (r.join_sent, r.admitted_at) {
            h.saturating_record(admitted.saturating_sub(sent).as_micros().max(1) as u64);
        }
    }
    (!h.is_empty()).then(|| Latency::of(&h))
}

/// Kendall's tau of the admitted post-start joiners: join order against (nbf, pos).
pub(crate) fn fairness(records: &[UserRecord]) -> Option<Fairness> {
    // The server admits places in the order of their positions (the service's own tests check
    // that); a position is the token's `pos` once admitted, else the last one a poll gave, so
    // the users still queued when the sale sold out count too.
    let pairs: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| !r.pre_queue)
        .filter_map(|r| Some((nanos(r.join_sent?), r.pos.or(r.position)?)))
        .collect();
    Some(Fairness {
        users: pairs.len() as u64,
        kendall_tau: fairness::kendall_tau(&pairs)?,
    })
}

/// The draw of the pre-queue joiners: join order against position (admitted places by their
/// token's `pos` first, then the others by the last position a poll gave).
pub(crate) fn pre_queue(records: &[UserRecord]) -> Option<PreQueue> {
    let drawn: Vec<&UserRecord> = records.iter().filter(|r| r.pre_queue).collect();
    let pairs: Vec<(u64, u64)> = drawn
        .iter()
        .filter_map(|r| {
            let place = match (r.pos, r.position) {
                (Some(pos), _) => pos,
                (None, Some(position)) => (1 << 40) + position,
                (None, None) => return None,
            };
            Some((nanos(r.join_sent?), place))
        })
        .collect();
    let n = pairs.len() as u64;
    let kendall_tau = fairness::kendall_tau(&pairs)?;
    let z_score = fairness::tau_z(kendall_tau, n);
    let chi_square = fairness::decile_chi_square(&pairs);
    Some(PreQueue {
        users: n,
        joined_with_position: drawn
            .iter()
            .filter(|r| r.join_sent.is_some() && !r.joined_undrawn)
            .count() as u64,
        kendall_tau,
        z_score,
        uniform: z_score.abs() < Z_LIMIT && chi_square.as_ref().is_some_and(|c| c.passes),
        chi_square,
    })
}

/// Waits after the sell-out (the last 202) of the users told sold out.
pub(crate) fn sellout(records: &[UserRecord]) -> Option<SelloutWaits> {
    let sellout = records.iter().filter_map(|r| r.reserved_at).max()?;
    let mut waits: Vec<Duration> = records
        .iter()
        .filter_map(|r| Some(r.sold_out_at?.saturating_sub(sellout)))
        .collect();
    waits.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Some(SelloutWaits {
        sellout_at_ms: ms(sellout),
        users: waits.len() as u64,
        max_ms: waits.last().map_or(0.0, |d| ms(*d)),
        p99_ms: percentile(&waits, 0.99).map_or(0.0, ms),
        over_2s: waits
            .iter()
            .filter(|d| **d > Duration::from_secs(2))
            .count() as u64,
    })
}

/// The `q` quantile of the sorted `v` (nearest rank).
fn percentile(v: &[Duration], q: f64) -> Option<Duration> {
    let rank = ((v.len() as f64 * q).ceil() as usize).max(1);
    v.get(rank - 1).copied()
}

/// `d` in nanoseconds (saturating).
fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
