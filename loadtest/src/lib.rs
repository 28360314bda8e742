//! The seckill load generator as a library, so the service's own tests can run it in-process.
//!
//! It creates (or targets) a sale, offers load in open loop (a fixed arrival rate, latency
//! measured from each request's intended start, so a stalled server cannot hide its stalls —
//! coordinated omission) or closed loop (a fixed number of requests in flight), counts every
//! answer by outcome and failures by cause, prints a line a second, judges `--threshold`s,
//! writes `--json` and an HTML `--report`, and with `--verify` checks the result through the
//! admin API against what the client itself was told.
//!
//! Modules by job: [`args`] (flags into a [`Plan`]), [`run`] (workers, retries, schedule),
//! [`client`] (one HTTP/1.1 connection), [`outcome`] and [`errors`] (classifying answers),
//! [`stats`] (recording and the per-second series), [`progress`] (live lines), [`summary`]
//! (figures and their text), [`threshold`], [`report`] (HTML), [`verify`], [`lifecycle`].

mod admin;
pub mod args;
pub mod client;
pub mod errors;
#[cfg(test)]
mod fixture;
mod judge;
pub mod lifecycle;
pub mod outcome;
pub mod progress;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod threshold;
pub mod verify;

use std::{
    collections::BTreeMap,
    future::Future,
    net::{SocketAddr, ToSocketAddrs},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde::Serialize;
use serde_json::json;

pub use args::{Args, Endpoint, Mode, Plan};
pub use errors::{ErrorCause, ErrorRow};
pub use outcome::{Counts, Outcome};
pub use summary::{Latency, Schedule, Summary};
pub use threshold::{Threshold, ThresholdResult};
pub use verify::{ClientTally, Verification};

fn resolve(base_url: &str) -> anyhow::Result<(SocketAddr, HeaderValue)> {
    let host = base_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let with_port = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    Ok((addr, HeaderValue::from_str(host)?))
}

fn mint(secret: &str, user: &str) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
    }
    let exp = jsonwebtoken::get_current_timestamp() + 24 * 3600;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims { sub: user, exp },
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

async fn create_sale(http: &reqwest::Client, plan: &Plan) -> anyhow::Result<(u64, u64)> {
    let a = &plan.args;
    let now = chrono::Utc::now();
    let lasts = plan.duration.unwrap_or(Duration::from_secs(600)) + Duration::from_secs(3600);
    let body = json!({
        "name": format!("loadtest {}", now.format("%Y-%m-%d %H:%M:%S")),
        "starts_at": (now - chrono::Duration::seconds(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::seconds(lasts.as_secs() as i64)).to_rfc3339(),
        "items": [{"sku": "loadtest-item", "title": "Loadtest item", "price_cents": 100,
                   "stock": a.stock, "per_user_limit": a.per_user_limit}],
    });
    let mut body = body;
    if let Some(w) = a.payment_window_secs {
        body["items"][0]["payment_window_secs"] = json!(w);
    }
    let sale = admin::Admin::new(http, &a.admin_url, &a.admin_token)
        .create_sale(&body)
        .await?;
    Ok((
        sale["id"].as_u64().context("sale id")?,
        sale["items"][0]["id"].as_u64().context("item id")?,
    ))
}

/// Runs a whole load test: sale, tokens, load, summary, thresholds, optional verification,
/// JSON and HTML report. Same as [`run_until`] with a cancellation that never comes.
///
/// # Errors
/// Bad arguments, or the target could not be reached.
pub async fn run(args: Args, show_progress: bool) -> anyhow::Result<Summary> {
    run_until(args, show_progress, std::future::pending()).await
}

/// Runs a whole load test, stopping the load early when `cancel` completes (the binary passes
/// Ctrl-C): requests in flight get [`run::INTERRUPT_GRACE`] to finish, then the summary covers
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
    let (sale_id, item_id) = if a.create_sale {
        let (s, i) = create_sale(&http, &plan).await?;
        (Some(s), Some(i))
    } else {
        (a.sale, a.item)
    };
    let (addr, host) = resolve(&a.base_url)?;
    let (method, path, body) = match a.endpoint {
        Endpoint::Buy => (
            Method::POST,
            format!(
                "/api/v1/sales/{}/items/{}/orders",
                sale_id.unwrap_or(0),
                item_id.unwrap_or(0)
            ),
            Bytes::from_static(br#"{"quantity":1}"#),
        ),
        Endpoint::Healthz => (Method::GET, "/healthz".into(), Bytes::new()),
        Endpoint::SalePage => (
            Method::GET,
            format!("/api/v1/sales/{}", sale_id.unwrap_or(0)),
            Bytes::new(),
        ),
    };
    let tokens = if a.endpoint == Endpoint::Buy {
        (0..a.users)
            .map(|u| {
                let t = mint(&a.jwt_secret, &format!("lt-{u}"))?;
                Ok(HeaderValue::from_str(&format!("Bearer {t}"))?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let target = Arc::new(run::Target {
        addr,
        template: client::RequestTemplate {
            method,
            path,
            host,
            body,
        },
        tokens,
        run_id: run_id(),
    });
    let workers = match plan.mode {
        Mode::OpenLoop { connections, .. } => connections,
        Mode::ClosedLoop { concurrency } => concurrency,
    };
    let recorder = Arc::new(stats::Recorder::new(workers));
    let aggregate = Arc::new(Mutex::new(stats::Aggregate::default()));
    let live = show_progress.then(|| Arc::new(progress::Live::start(&plan)));
    let start = Instant::now();
    let collector = {
        let (recorder, aggregate, live) = (recorder.clone(), aggregate.clone(), live.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                (start + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let elapsed = start.elapsed();
                let mut agg = aggregate.lock().unwrap_or_else(PoisonError::into_inner);
                let second = agg.drain(&recorder, elapsed).clone();
                if let Some(live) = &live {
                    live.tick(elapsed, &second, &agg.total);
                }
            }
        })
    };
    let note = live.clone();
    let cancel = async move {
        cancel.await;
        if let Some(live) = note {
            live.note("interrupted: finishing the requests in flight, then the summary");
        }
    };
    let end = run::run_load(&plan, target, recorder.clone(), start, cancel).await;
    collector.abort();
    let _ = collector.await;
    if let Some(live) = &live {
        live.finish();
    }
    let mut agg = std::mem::take(&mut *aggregate.lock().unwrap_or_else(PoisonError::into_inner));
    agg.drain(&recorder, end.elapsed);
    if agg.series.len() > 1
        && agg
            .series
            .last()
            .is_some_and(|p| p.requests == 0 && p.secs < 0.5)
    {
        agg.series.pop();
    }
    let mut summary = summarise(&plan, sale_id, item_id, agg, &end);
    summary.thresholds = a
        .thresholds
        .iter()
        .map(|t| judge::judge(t, &summary))
        .collect();
    if a.verify
        && let Some(sale) = sale_id
    {
        let client = ClientTally {
            item_id: item_id.unwrap_or(0),
            confirmed: summary.outcomes.reserved,
            order_ids: Some(summary.order_ids.clone()),
            unknown_fate: summary.unknown_fate,
            only_client: a.create_sale,
        };
        let (verdict, report) = verify::verify_sale(
            &http,
            &a.admin_url,
            &a.admin_token,
            sale,
            &client,
            a.drain_timeout,
        )
        .await?;
        summary.verification = Some(verdict);
        summary.reconciliation = Some(report);
        if let Some(share) = a.pay_share
            && summary.passed()
        {
            let target = lifecycle::PaidSale {
                admin: admin::Admin::new(&http, &a.admin_url, &a.admin_token),
                sale,
                base_url: &a.base_url,
                payment_secret: &a.payment_secret,
                window_secs: a.payment_window_secs.unwrap_or(900),
            };
            let step = lifecycle::pay_and_expire(&http, &target, &summary.order_ids, share).await?;
            // The report shown is the latest: after the payments and the expiry.
            summary.reconciliation = Some(step.report.clone());
            summary.lifecycle = Some(step);
        }
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.report {
        std::fs::write(path, report::render(&summary))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summary)
}

/// The summary of the load (thresholds and verification come after).
fn summarise(
    plan: &Plan,
    sale_id: Option<u64>,
    item_id: Option<u64>,
    agg: stats::Aggregate,
    end: &run::LoadEnd,
) -> Summary {
    let a = &plan.args;
    let total = agg.total;
    let requests = total.counts.total();
    let latency_by_outcome: BTreeMap<&'static str, Latency> = outcome::Kind::ALL
        .iter()
        .filter(|k| !total.kind(**k).is_empty())
        .map(|k| (k.name(), Latency::of(total.kind(*k))))
        .collect();
    Summary {
        endpoint: a.endpoint,
        base_url: a.base_url.clone(),
        sale_id,
        item_id,
        mode: plan.mode,
        users: a.users,
        elapsed_secs: end.elapsed.as_secs_f64(),
        interrupted: end.interrupted,
        requests,
        throughput_per_sec: requests as f64 / end.elapsed.as_secs_f64().max(1e-9),
        latency: Latency::of(&total.latency),
        latency_by_outcome,
        latency_histogram: summary::histogram_buckets(&total.latency),
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

/// A number unique to this run (time and process), so its idempotency keys are fresh.
fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    run::user_of(nanos ^ (u64::from(std::process::id()) << 40), u64::MAX)
}
