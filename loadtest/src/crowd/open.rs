//! `--compare-open`: the same crowd against a sale without a waiting room. Each user buys once,
//! retrying 429 and 503 after `Retry-After` (and requests without an answer), until reserved,
//! sold out or refused; what counts is how many requests that takes.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    buy::{BuyEnd, Retrying, buy},
    user::Crowd,
};

/// How a user of the open crowd did.
#[derive(Debug, Clone)]
pub(crate) struct OpenRecord {
    /// Buy attempts.
    pub requests: u64,
    /// How the buy ended.
    pub end: BuyEnd,
}

/// The open crowd's figures.
#[derive(Debug, Clone, Serialize)]
pub struct OpenCrowd {
    /// The open sale.
    pub sale_id: u64,
    /// Users.
    pub users: u64,
    /// 202s.
    pub units_sold: u64,
    /// Buy attempts, retries included.
    pub requests: u64,
    /// `requests` / `units_sold` (none when nothing sold).
    pub requests_per_unit_sold: Option<f64>,
    /// `requests` / `users`.
    pub requests_per_user: f64,
    /// Users told sold out.
    pub sold_out: u64,
    /// Users refused otherwise.
    pub refused: u64,
    /// Users whose requests went unanswered to the end.
    pub failed: u64,
    /// Users still retrying when the crowd stopped.
    pub unfinished: u64,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
}

/// Retries of the open crowd: as many as it takes, after whatever `Retry-After` says.
const OPEN_RETRYING: Retrying = Retrying {
    attempts: u32::MAX,
    cap: Duration::from_secs(3600),
};

/// User `user` of the open crowd, buying at `at`.
pub(crate) async fn open_user(crowd: &Crowd, user: u64, at: Instant) -> OpenRecord {
    let mut requests = 0;
    if !crowd
        .pause(at.saturating_duration_since(Instant::now()))
        .await
    {
        return OpenRecord {
            requests,
            end: BuyEnd::Stopped,
        };
    }
    let end = buy(
        crowd,
        user,
        None,
        crowd.key_run,
        OPEN_RETRYING,
        &mut requests,
    )
    .await;
    OpenRecord { requests, end }
}

/// The figures of the open crowd's `records` on `sale_id`, which took `elapsed`.
pub(crate) fn tally(sale_id: u64, records: &[OpenRecord], elapsed: Duration) -> OpenCrowd {
    let count = |f: fn(&BuyEnd) -> bool| records.iter().filter(|r| f(&r.end)).count() as u64;
    let units_sold = count(|e| *e == BuyEnd::Reserved);
    let requests: u64 = records.iter().map(|r| r.requests).sum();
    let users = records.len() as u64;
    OpenCrowd {
        sale_id,
        users,
        units_sold,
        requests,
        requests_per_unit_sold: (units_sold > 0).then(|| requests as f64 / units_sold as f64),
        requests_per_user: requests as f64 / users.max(1) as f64,
        sold_out: count(|e| *e == BuyEnd::SoldOut),
        refused: count(|e| matches!(e, BuyEnd::Refused(_))),
        failed: count(|e| *e == BuyEnd::Failed),
        unfinished: count(|e| *e == BuyEnd::Stopped),
        elapsed_secs: elapsed.as_secs_f64(),
    }
}
