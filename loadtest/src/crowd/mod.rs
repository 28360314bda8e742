//! `--queue`: a crowd of simulated users going through a sale's waiting room, one task per
//! user sharing a pool of connections, and (with `--compare-open`) the same crowd against an
//! open sale; the figures in [`CrowdReport`].
//!
//! Files by job: `user` (one user: join, poll, buy, and what it saw), `buy` (the buy and its
//! retries), `pow` (the proof of work), `protocol` (the waiting room's answers, the admission
//! token's claims), `pool` (the shared connections), `sale` (creating or reading the sales),
//! `open` (the open crowd), `fairness` (Kendall's tau, its z-score, the chi-square of
//! deciles), `report` (the figures) and `text` (their words).

mod buy;
mod fairness;
mod open;
mod pool;
mod pow;
mod protocol;
mod report;
mod sale;
mod text;
mod user;

use std::{
    future::Future,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::Context;

pub use fairness::ChiSquare;
pub use open::OpenCrowd;
pub use report::{CrowdReport, Fairness, Outcomes, PreQueue, SelloutWaits};
pub use user::Requests;

/// The most `--pow-bits`: about 4 billion hashes a join on average.
pub(crate) const MAX_POW_BITS: u32 = pow::MAX_BITS;

use crate::{Args, args_crowd::CrowdPlan, setup};
use pool::Pool;
use user::{Crowd, Interrupt, UserRecord};

/// Runs a whole crowd: the queued sale (created or given), the users through its waiting room,
/// with `--compare-open` the open crowd, the figures, and `--json`. When `cancel` completes
/// (the binary passes Ctrl-C) every user stops where it is and the figures cover what ran.
///
/// # Errors
/// Bad arguments, the sale could not be created or read, or the target does not resolve.
pub async fn run_crowd(
    args: Args,
    show_progress: bool,
    cancel: impl Future<Output = ()>,
) -> anyhow::Result<CrowdReport> {
    let plan = args.crowd_plan()?;
    let interrupted = Arc::new(Interrupt::default());
    let watch = async {
        cancel.await;
        interrupted.raise();
        std::future::pending::<()>().await;
    };
    let report = tokio::select! {
        r = crowds(&plan, show_progress, interrupted.clone()) => r?,
        () = watch => unreachable!("the watch never ends"),
    };
    if let Some(path) = &plan.args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// The queued crowd, then the open one when asked for; their figures.
async fn crowds(
    plan: &CrowdPlan,
    show_progress: bool,
    interrupted: Arc<Interrupt>,
) -> anyhow::Result<CrowdReport> {
    let a = &plan.args;
    let http = reqwest::Client::new();
    let tokens = Arc::new(setup::tokens(a)?);
    let queued = sale::queued(&http, plan).await?;
    let pre_queue_users = if queued.window.is_zero() {
        0
    } else {
        plan.pre_queue_users
    };
    let crowd = Arc::new(Crowd {
        pool: pool(a)?,
        sale: queued.sale,
        item: queued.item,
        tokens: tokens.clone(),
        key_run: setup::run_id(),
        pow_bits: a.crowd.pow_bits,
        start: queued.start,
        deadline: queued.start + plan.deadline,
        interrupted: interrupted.clone(),
    });
    let when = schedule(a.users, pre_queue_users, queued.window, a.crowd.join_ramp);
    if show_progress {
        eprintln!(
            "crowd: {} users on sale {} ({} before the start, in {:.1} s)",
            a.users,
            queued.sale,
            pre_queue_users,
            queued.window.as_secs_f64()
        );
    }
    let records = queued_crowd(&crowd, &when).await;
    let elapsed = queued.start.elapsed();
    let mut failures = crowd.pool.failures.load(Ordering::Relaxed);
    let open = if a.crowd.compare_open && !interrupted.is_raised() {
        let (sale, item) = sale::open(&http, plan).await?;
        let start = Instant::now();
        let open_crowd = Crowd {
            pool: pool(a)?,
            sale,
            item,
            tokens,
            key_run: setup::run_id() ^ 1,
            pow_bits: 0,
            start,
            deadline: start + plan.deadline,
            interrupted: interrupted.clone(),
        };
        let records = open_crowd_run(Arc::new(open_crowd), a.crowd.join_ramp).await;
        failures += records.1;
        Some(open::tally(sale, &records.0, start.elapsed()))
    } else {
        None
    };
    Ok(report::build(&report::Ran {
        plan,
        sale: &queued,
        records: &records,
        open,
        elapsed,
        failures,
        interrupted: interrupted.is_raised(),
        pre_queue_users,
    }))
}

/// A pool of `--connections` to `--base-url`.
fn pool(a: &Args) -> anyhow::Result<Pool> {
    let (addr, host) = setup::resolve(&a.base_url)?;
    Ok(Pool::new(addr, host, a.connections, a.timeout))
}

/// Every user of the queued crowd, each at its time; their records in user order.
async fn queued_crowd(crowd: &Arc<Crowd>, when: &[(Duration, bool)]) -> Vec<UserRecord> {
    let mut set = tokio::task::JoinSet::new();
    for (user, (offset, pre)) in when.iter().copied().enumerate() {
        let crowd = crowd.clone();
        set.spawn(async move {
            let rec = user::live(&crowd, user as u64, crowd.start + offset, pre).await;
            (user, rec)
        });
    }
    let mut records = vec![UserRecord::default(); when.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((user, rec)) = done {
            records[user] = rec;
        }
    }
    records
}

/// Every user of the open crowd, spread over `ramp`; their records and the requests that got
/// no answer.
async fn open_crowd_run(crowd: Arc<Crowd>, ramp: Duration) -> (Vec<open::OpenRecord>, u64) {
    let users = crowd.tokens.len() as u64;
    let mut set = tokio::task::JoinSet::new();
    for user in 0..users {
        let crowd = crowd.clone();
        let at = crowd.start + spread(ramp, user, users);
        set.spawn(async move { open::open_user(&crowd, user, at).await });
    }
    let mut records = Vec::with_capacity(users as usize);
    while let Some(done) = set.join_next().await {
        records.extend(done.ok());
    }
    (records, crowd.pool.failures.load(Ordering::Relaxed))
}

/// Room left before the start when the pre-queue's last join goes out (at most 0.5 s, a fifth
/// of the window), so that clock drift does not carry it past the start.
const PRE_QUEUE_MARGIN: Duration = Duration::from_millis(500);
/// The first post-start join goes out this long after the start.
const POST_START_DELAY: Duration = Duration::from_millis(200);

/// When each user joins, from the crowd's start, and whether before the sale's start: the
/// first `pre` users spread over the `window` (less a margin), the others over `ramp` after it.
pub(crate) fn schedule(
    users: u64,
    pre: u64,
    window: Duration,
    ramp: Duration,
) -> Vec<(Duration, bool)> {
    let pre = pre.min(users);
    let usable = window.saturating_sub(PRE_QUEUE_MARGIN.min(window / 5));
    let post = users - pre;
    let before = (0..pre).map(|i| (spread(usable, i, pre), true));
    let after = (0..post).map(|j| (window + POST_START_DELAY + spread(ramp, j, post), false));
    before.chain(after).collect()
}

/// The `i`th of `n` instants spread evenly over `span`, the first at 0.
fn spread(span: Duration, i: u64, n: u64) -> Duration {
    span.mul_f64(i as f64 / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_queue_joins_before_the_start_and_the_rest_after_it() {
        let s = schedule(10, 4, Duration::from_secs(3), Duration::from_secs(2));
        assert_eq!(s.len(), 10);
        assert_eq!(s.iter().filter(|w| w.1).count(), 4);
        assert!(
            s[..4]
                .iter()
                .all(|(t, pre)| *pre && *t < Duration::from_millis(2500))
        );
        assert_eq!(s[0].0, Duration::ZERO);
        assert!(
            s[4..]
                .iter()
                .all(|(t, pre)| !*pre && *t >= Duration::from_millis(3200))
        );
        assert!(s[9].0 < Duration::from_millis(5200));
        assert!(s.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn without_a_window_everyone_joins_after_the_start() {
        let s = schedule(3, 0, Duration::ZERO, Duration::from_secs(1));
        assert!(s.iter().all(|(_, pre)| !pre));
        assert_eq!(s[0].0, POST_START_DELAY);
    }
}
