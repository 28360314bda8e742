//! The seckill load generator as a library, so the service's own tests can run it in-process.
//!
//! It creates (or targets) a sale, offers load in open loop (a fixed arrival rate, latency
//! measured from each request's intended start, so a stalled server cannot hide its stalls —
//! coordinated omission) or closed loop (a fixed number of requests in flight), counts every
//! answer by outcome and failures by cause, prints a line a second, judges `--threshold`s,
//! writes `--json` and an HTML `--report`, and with `--verify` checks the result through the
//! admin API against what the client itself was told. With `--queue` it runs a crowd through
//! a sale's waiting room instead ([`run_crowd`]).
//!
//! Modules by job: `args` (flags into a plan), `setup` (the sale, the request, the tokens),
//! `measure` and `run` (the load: workers, retries, schedule, the once-a-second collector),
//! `client` (one HTTP/1.1 connection), `outcome` and `errors` (classifying answers), `stats`
//! (recording and the per-second series), `progress` (live lines), `summary` (figures and
//! their text), `threshold` and `judge`, `report` (HTML), `admin` (the admin API), `verify`,
//! `lifecycle`; `args_crowd` and `crowd` (`--queue`: a crowd through a sale's waiting room,
//! with queue times, fairness, the pre-queue draw's randomness, requests per unit sold, waits
//! after sell-out, and `--compare-open`).
#![warn(unreachable_pub)]

mod admin;
mod args;
mod args_crowd;
mod client;
mod crowd;
mod errors;
#[cfg(test)]
mod fixture;
mod judge;
mod lifecycle;
mod measure;
mod outcome;
mod progress;
mod report;
mod run;
mod setup;
mod stats;
mod summary;
mod threshold;
pub mod verify;

use std::future::Future;

use anyhow::Context;

pub use args::{Args, CrowdArgs, Endpoint, Mode};
pub use crowd::{
    ChiSquare, CrowdReport, Fairness, OpenCrowd, Outcomes, PreQueue, Requests, SelloutWaits,
    run_crowd,
};
pub use errors::ErrorRow;
pub use lifecycle::LifecycleReport;
pub use outcome::Counts;
pub use stats::{Retries, Second};
pub use summary::{Bucket, Latency, Schedule, Summary};
pub use threshold::{Op, Threshold, ThresholdError, ThresholdResult};
pub use verify::{ClientTally, Verification};

/// Runs a whole load test: sale, tokens, load, summary, thresholds, optional verification,
/// JSON and HTML report. Same as [`run_until`] with a cancellation that never comes.
///
/// # Errors
/// Bad arguments, or the target could not be reached.
pub async fn run(args: Args, show_progress: bool) -> anyhow::Result<Summary> {
    run_until(args, show_progress, std::future::pending()).await
}

/// Runs a whole load test, stopping the load early when `cancel` completes (the binary passes
/// Ctrl-C): requests in flight get a second (`INTERRUPT_GRACE`) to finish, then the summary covers
/// what ran, with `interrupted` set, and thresholds, `--verify`, `--json` and `--report` go
/// ahead on it.
///
/// # Errors
/// Bad arguments, or the target could not be reached.
pub async fn run_until(
    args: Args,
    show_progress: bool,
    cancel: impl Future<Output = ()>,
) -> anyhow::Result<Summary> {
    let plan = args.plan()?;
    let a = &plan.args;
    let http = reqwest::Client::new();
    let ids = setup::sale_item(&http, &plan).await?;
    let target = setup::target(a, ids)?;
    let (agg, end) = measure::measure(&plan, target, show_progress, cancel).await;
    let mut summary = summary::summarise(&plan, ids, agg, &end);
    summary.thresholds = a
        .thresholds
        .iter()
        .map(|t| judge::judge(t, &summary))
        .collect();
    if a.verify
        && let Some(sale) = ids.sale
    {
        check_sale(&http, a, sale, &mut summary).await?;
    }
    write_files(a, &summary)?;
    Ok(summary)
}

/// `--verify`: the stores against what this client was told; then `--pay-share`, when the
/// verification passed: pay, let the rest expire, and check again.
async fn check_sale(
    http: &reqwest::Client,
    a: &Args,
    sale: u64,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let client = ClientTally {
        item_id: summary.item_id.unwrap_or(0),
        confirmed: summary.outcomes.reserved,
        order_ids: Some(summary.order_ids.clone()),
        unknown_fate: summary.unknown_fate,
        only_client: a.create_sale,
    };
    let (verdict, report) = verify::verify_sale(
        http,
        &a.admin_url,
        &a.admin_token,
        sale,
        &client,
        a.drain_timeout,
    )
    .await?;
    summary.verification = Some(verdict);
    summary.reconciliation = Some(report);
    let Some(share) = a.pay_share.filter(|_| summary.passed()) else {
        return Ok(());
    };
    let target = lifecycle::PaidSale {
        admin: admin::Admin::new(http, &a.admin_url, &a.admin_token),
        sale,
        base_url: &a.base_url,
        payment_secret: &a.payment_secret,
        window_secs: a.payment_window_secs.unwrap_or(900),
    };
    let step = lifecycle::pay_and_expire(http, &target, &summary.order_ids, share).await?;
    // The report shown is the latest: after the payments and the expiry.
    summary.reconciliation = Some(step.report.clone());
    summary.lifecycle = Some(step);
    Ok(())
}

/// `--json` and `--report`.
fn write_files(a: &Args, summary: &Summary) -> anyhow::Result<()> {
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.report {
        std::fs::write(path, report::render(summary))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
