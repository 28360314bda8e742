//! The seckill load generator as a library, so the service's own tests can run it in-process.
//!
//! It creates (or targets) a sale, offers load in open loop (a fixed arrival rate, latency
//! measured from each request's intended start, so a stalled server cannot hide its stalls —
//! coordinated omission) or closed loop (a fixed number of requests in flight), counts every
//! answer by outcome, and with `--verify` checks the result through the admin API.

pub mod args;
pub mod client;
pub mod lifecycle;
pub mod outcome;
pub mod run;
pub mod verify;

use std::{
    net::{SocketAddr, ToSocketAddrs},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde::Serialize;
use serde_json::{Value, json};

pub use args::{Args, Endpoint, Mode, Plan};
pub use outcome::{Counts, Outcome};
pub use verify::Verification;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
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
    /// Requests answered (or failed).
    pub requests: u64,
    /// Requests per second.
    pub throughput_per_sec: f64,
    /// Latency percentiles.
    pub latency: Latency,
    /// Counts by outcome.
    pub outcomes: Counts,
    /// `--verify` verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The reconciliation report fetched by `--verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Value>,
    /// The `--pay-share` step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<lifecycle::LifecycleReport>,
}

impl Summary {
    /// True when the run should exit 0: verification passed or was not asked for.
    pub fn passed(&self) -> bool {
        self.verification.as_ref().is_none_or(|v| v.ok)
            && self.lifecycle.as_ref().is_none_or(|l| l.ok)
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
        let l = &self.latency;
        let _ = writeln!(
            s,
            "latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
        );
        let o = &self.outcomes;
        let _ = writeln!(
            s,
            "outcomes    reserved {}  sold_out {}  limit_exceeded {}  rate_limited {}  errors {}  timeouts {}",
            o.reserved, o.sold_out, o.limit_exceeded, o.rate_limited, o.errors, o.timeouts
        );
        if let Some(v) = &self.verification {
            let _ = writeln!(
                s,
                "verify      {}: {} reservations, {} units persisted, stock {}, consumer {}",
                if v.ok { "OK" } else { "FAILED" },
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
        s
    }
}

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
    let resp = http
        .post(format!("{}/admin/v1/sales", a.admin_url))
        .bearer_auth(&a.admin_token)
        .json(&body)
        .send()
        .await
        .context("creating the sale")?;
    let status = resp.status();
    let sale: Value = resp.json().await?;
    anyhow::ensure!(
        status.as_u16() == 201,
        "creating the sale answered {status}: {sale}"
    );
    anyhow::ensure!(
        sale["status"] == "warmed",
        "the sale was not warmed: {sale}"
    );
    Ok((
        sale["id"].as_u64().context("sale id")?,
        sale["items"][0]["id"].as_u64().context("item id")?,
    ))
}

/// Runs a whole load test: sale, tokens, load, summary and optional verification.
///
/// # Errors
/// Bad arguments, or the target could not be reached.
pub async fn run(args: Args, show_progress: bool) -> anyhow::Result<Summary> {
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
    let template = client::RequestTemplate {
        method,
        path,
        host,
        body,
    };
    let progress = Arc::new(run::Progress::default());
    let bar = show_progress.then(|| progress_bar(&plan));
    let ticker = bar.clone().map(|bar| {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let done = progress.done.load(Ordering::Relaxed);
                bar.set_message(format!(
                    "{done} answered, {} reserved, {} other",
                    progress.reserved.load(Ordering::Relaxed),
                    progress.other.load(Ordering::Relaxed)
                ));
                if bar.length().is_some_and(|l| l > 0) && plan_is_request_bound(&bar) {
                    bar.set_position(done);
                } else {
                    bar.set_position(bar.elapsed().as_secs());
                }
            }
        })
    });
    let result = run::run_load(&plan, addr, template, Arc::new(tokens), progress).await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let h = &result.latency_us;
    let ms = |v: u64| v as f64 / 1000.0;
    let requests = result.counts.total();
    let mut summary = Summary {
        endpoint: a.endpoint,
        base_url: a.base_url.clone(),
        sale_id,
        item_id,
        mode: plan.mode,
        users: a.users,
        elapsed_secs: result.elapsed.as_secs_f64(),
        requests,
        throughput_per_sec: requests as f64 / result.elapsed.as_secs_f64().max(1e-9),
        latency: Latency {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        },
        outcomes: result.counts,
        verification: None,
        reconciliation: None,
        lifecycle: None,
    };
    if a.verify
        && let Some(sale) = sale_id
    {
        let (view, drained) =
            verify::wait_drained(&http, &a.admin_url, &a.admin_token, sale, a.drain_timeout)
                .await?;
        let report: Value = http
            .post(format!("{}/admin/v1/sales/{sale}/reconcile", a.admin_url))
            .bearer_auth(&a.admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let confirmed = a.create_sale.then_some(summary.outcomes.reserved);
        summary.verification = Some(verify::judge(&view, &report, drained, confirmed));
        summary.reconciliation = Some(report);
        if let Some(share) = a.pay_share
            && summary.passed()
        {
            let step = lifecycle::pay_and_expire(&http, a, sale, &result.order_ids, share).await?;
            // The report shown is the latest: after the payments and the expiry.
            summary.reconciliation = Some(step.report.clone());
            summary.lifecycle = Some(step);
        }
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summary)
}

const REQUEST_BOUND: &str = "requests";

fn plan_is_request_bound(bar: &indicatif::ProgressBar) -> bool {
    bar.prefix() == REQUEST_BOUND
}

fn progress_bar(plan: &Plan) -> indicatif::ProgressBar {
    let (len, prefix, unit) = match (plan.requests, plan.duration) {
        (Some(n), None) => (n, REQUEST_BOUND, "req"),
        (_, Some(d)) => (d.as_secs().max(1), "seconds", "s"),
        (None, None) => (0, "seconds", "s"),
    };
    let bar = indicatif::ProgressBar::new(len);
    bar.set_prefix(prefix);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}  {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
