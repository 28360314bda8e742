//! Command-line arguments and their validation into a [`Plan`].

use std::time::Duration;

use clap::{Parser, ValueEnum};

pub use crate::args_crowd::CrowdArgs;

/// Load generator for seckill.
///
/// While it runs it prints one line a second on standard error (requests per second, p50 and
/// p99 so far, outcome counts, errors by cause); at the end, the summary on standard output.
/// Ctrl-C stops the load and still prints the summary of what ran (a second Ctrl-C quits at
/// once). With --queue, a crowd goes through a sale's waiting room instead (see --queue).
/// Exit code: 0 when every --threshold held and --verify passed, 1 when one did not,
/// 2 on a usage error or when the run could not start (the host did not resolve, the sale
/// could not be created); failed requests are counted, not fatal.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadtest", version, about, long_about)]
pub struct Args {
    /// Base URL of the seckill API (buyers' listener).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// Base URL of the admin listener (SECKILL_ADMIN_ADDR), to create the sale and verify.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub admin_url: String,
    /// Admin token (to create the sale and verify).
    #[arg(
        long,
        env = "SECKILL_ADMIN_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub admin_token: String,
    /// Secret that signs buyers' tokens (the loadtest acts as the login system).
    #[arg(
        long,
        env = "SECKILL_JWT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub jwt_secret: String,
    /// What to hit.
    #[arg(long, value_enum, default_value_t = Endpoint::Buy)]
    pub endpoint: Endpoint,
    /// Create a one-item sale that starts now and target it (with --queue: a sale with a waiting
    /// room whose queue opens now and which starts --pre-queue-secs later).
    #[arg(long, conflicts_with_all = ["sale", "item"])]
    pub create_sale: bool,
    /// Stock of the created sale.
    #[arg(long, default_value_t = 10_000)]
    pub stock: u64,
    /// Per-user limit of the created sale.
    #[arg(long, default_value_t = 1)]
    pub per_user_limit: u64,
    /// Existing sale to target.
    #[arg(long, requires = "item")]
    pub sale: Option<u64>,
    /// Existing item to target.
    #[arg(long, requires = "sale")]
    pub item: Option<u64>,
    /// Distinct simulated buyers (at most 2,000,000: a token is signed for each before the run).
    #[arg(long, default_value_t = 100_000)]
    pub users: u64,
    /// Open loop: requests per second, latency measured from each request's intended start
    /// (corrected for coordinated omission). A request due while every connection is busy
    /// waits for the first free one (never dropped) and counts as late when it starts more
    /// than 1 ms after its time; above 1% late, the summary warns.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<u64>,
    /// Closed loop: requests in flight at once, each sent when the previous answered.
    #[arg(long)]
    pub concurrency: Option<u64>,
    /// Connections used in open-loop mode; with --queue, the pool the crowd shares.
    #[arg(long, default_value_t = 256)]
    pub connections: u64,
    /// How long to run (e.g. 10s, 1m); with --queue, the longest the crowd may take (10 min
    /// without it).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Per-request timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// After the run: wait for the consumer to drain, check the invariants through the admin
    /// API and print the reconciliation report. Exit code 1 if anything is off.
    #[arg(long)]
    pub verify: bool,
    /// Longest wait for the consumer to drain in --verify.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    pub drain_timeout: Duration,
    /// Write every figure as JSON to this file (with the per-second series; with --queue, the
    /// crowd's report).
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write a self-contained HTML report to this file: throughput, p50/p99 and outcomes per
    /// second, latency histogram (inline SVG, no scripts, nothing fetched).
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Pass/fail criterion, repeatable; the run exits 1 when one does not hold. METRIC OP
    /// VALUE with OP one of < <= > >=: latencies p50 p90 p99 p999 max mean with a unit
    /// (us, ms, s), e.g. 'p99<5ms'; rps, e.g. 'rps>1000'; counts requests reserved sold_out
    /// limit_exceeded rate_limited errors (with timeouts) timeouts retries late, as a number
    /// or a share of the requests, e.g. 'errors<0.1%', 'reserved>=100'.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<crate::threshold::Threshold>,
    /// Send a fresh Idempotency-Key with every buy, the same on its retries (--retry-on), so
    /// the server's replay path is exercised.
    #[arg(long)]
    pub idempotency_keys: bool,
    /// Retry buys answered with these statuses (e.g. 503,429) after the answer's Retry-After
    /// (at most 2 s; 100 ms doubling without one), at most 5 attempts in all. A buy and its
    /// retries count as one request; retries are counted apart.
    #[arg(long, value_delimiter = ',', value_name = "STATUSES")]
    pub retry_on: Vec<u16>,
    /// No live output (the per-second lines on standard error).
    #[arg(long)]
    pub no_progress: bool,
    /// Payment window of the created sale's item, in seconds (the service's default: 900).
    #[arg(long)]
    pub payment_window_secs: Option<u64>,
    /// Stock shards of the created sale's item (more than 1 needs the service on Redis
    /// Cluster).
    #[arg(long)]
    pub shards: Option<u64>,
    /// After --verify: pay this share (0 to 1) of the reserved orders through the payment
    /// notification, wait for the others to expire, and check the states and the report.
    #[arg(long)]
    pub pay_share: Option<f64>,
    /// The ticket --endpoint queue-poll polls (a join's answer).
    #[arg(long)]
    pub ticket: Option<String>,
    /// Secret that signs payment notifications (the loadtest acts as the payment provider).
    #[arg(
        long,
        env = "SECKILL_PAYMENT_SECRET",
        default_value = "change-me-payment-secret",
        hide_env_values = true
    )]
    pub payment_secret: String,
    /// `--queue` and its flags.
    #[command(flatten)]
    pub crowd: CrowdArgs,
}

/// The request the load consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /api/v1/sales/{sale}/items/{item}/orders` as random users.
    Buy,
    /// `GET /healthz` (the baseline for ratios).
    Healthz,
    /// `GET /api/v1/sales/{sale}` (the public sale page).
    SalePage,
    /// `GET /api/v1/sales/{sale}/queue/{ticket}`: polls of one waiting-room ticket (--ticket).
    QueuePoll,
}

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Mode {
    /// Fixed arrival rate over `connections` connections.
    OpenLoop {
        /// Requests per second.
        rate: u64,
        /// Connections.
        connections: u64,
    },
    /// Fixed number of requests in flight.
    ClosedLoop {
        /// Requests in flight.
        concurrency: u64,
    },
}

impl Mode {
    /// Workers: one per connection (open loop) or per request in flight (closed loop).
    pub(crate) fn workers(self) -> u64 {
        match self {
            Mode::OpenLoop { connections, .. } => connections,
            Mode::ClosedLoop { concurrency } => concurrency,
        }
    }
}

/// What to do, validated.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The arguments.
    pub args: Args,
    /// Open or closed loop.
    pub mode: Mode,
    /// Duration limit, if any.
    pub duration: Option<Duration>,
    /// Request limit, if any.
    pub requests: Option<u64>,
}

/// A combination of arguments that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ArgError(pub String);

impl Args {
    /// Checks the combination and turns it into a plan.
    ///
    /// # Errors
    /// An [`ArgError`] saying which arguments conflict or are missing.
    pub(crate) fn plan(self) -> Result<Plan, ArgError> {
        if self.crowd.queue {
            return refuse("--queue is a crowd run, not a load (see Args::crowd_plan)");
        }
        let mode = self.mode()?;
        self.check_bounds()?;
        self.check_options()?;
        self.check_access()?;
        Ok(Plan {
            duration: self.duration,
            requests: self.requests,
            mode,
            args: self,
        })
    }

    /// Open loop (`--rate`) or closed loop (`--concurrency`), one of them.
    fn mode(&self) -> Result<Mode, ArgError> {
        match (self.rate, self.concurrency) {
            (Some(0), _) => refuse("--rate must be at least 1"),
            (_, Some(0)) => refuse("--concurrency must be at least 1"),
            (Some(_), None) if self.connections == 0 => refuse("--connections must be at least 1"),
            (Some(rate), None) => Ok(Mode::OpenLoop {
                rate,
                connections: self.connections,
            }),
            (None, Some(concurrency)) => Ok(Mode::ClosedLoop { concurrency }),
            (None, None) => refuse("choose --rate R (open loop) or --concurrency C (closed loop)"),
            (Some(_), Some(_)) => refuse("--rate and --concurrency exclude each other"),
        }
    }

    /// How long, against what, as how many users, on how much stock.
    fn check_bounds(&self) -> Result<(), ArgError> {
        if self.duration.is_none() && self.requests.is_none() {
            return refuse("give --duration, --requests, or both");
        }
        if self.duration.is_some_and(|d| d.is_zero()) || self.requests == Some(0) {
            return refuse("--duration and --requests must be positive");
        }
        if self.endpoint != Endpoint::Healthz && !self.create_sale && self.sale.is_none() {
            return refuse("give --create-sale or --sale ID --item ID");
        }
        if self.users == 0 {
            return refuse("--users must be at least 1");
        }
        if self.users > MAX_USERS {
            return refuse(
                "--users is at most 2000000 (a token is signed for each before the run)",
            );
        }
        if self.create_sale && (self.stock == 0 || self.per_user_limit == 0) {
            return refuse("--stock and --per-user-limit must be at least 1");
        }
        Ok(())
    }

    /// The options that apply to some runs only.
    fn check_options(&self) -> Result<(), ArgError> {
        if self.verify && self.endpoint != Endpoint::Buy {
            return refuse("--verify checks a buy run; use it with --endpoint buy");
        }
        if let Some(share) = self.pay_share {
            if !(0.0..=1.0).contains(&share) {
                return refuse("--pay-share must be between 0 and 1");
            }
            if !self.verify || !self.create_sale {
                return refuse("--pay-share needs --verify and --create-sale");
            }
        }
        if let Some(bad) = self.retry_on.iter().find(|s| !(400..=599).contains(*s)) {
            return Err(ArgError(format!(
                "--retry-on takes 4xx and 5xx statuses, not {bad}"
            )));
        }
        if (self.endpoint == Endpoint::QueuePoll) != self.ticket.is_some() {
            return refuse("--endpoint queue-poll needs --ticket, and --ticket applies to it only");
        }
        if self.idempotency_keys && self.endpoint != Endpoint::Buy {
            return refuse("--idempotency-keys applies to --endpoint buy");
        }
        if self.crowd.any_set() {
            return refuse(
                "--pre-queue-share, --pre-queue-secs, --join-ramp, --admit-per-sec, --max-active, \
                 --pow-bits and --compare-open apply to --queue",
            );
        }
        if self.payment_window_secs.is_some() && !self.create_sale {
            return refuse("--payment-window-secs applies to --create-sale");
        }
        if self.shards.is_some() && !self.create_sale {
            return refuse("--shards applies to --create-sale");
        }
        Ok(())
    }

    /// The URLs, and the secrets the run needs.
    fn check_access(&self) -> Result<(), ArgError> {
        if !self.base_url.starts_with("http://") {
            return refuse("--base-url must be an http:// URL");
        }
        if !self.admin_url.starts_with("http://") {
            return refuse("--admin-url must be an http:// URL");
        }
        if self.endpoint == Endpoint::Buy && self.jwt_secret.is_empty() {
            return refuse(
                "buying needs --jwt-secret (or SECKILL_JWT_SECRET) to sign buyers' tokens",
            );
        }
        if (self.create_sale || self.verify) && self.admin_token.is_empty() {
            return refuse(
                "--create-sale and --verify need --admin-token (or SECKILL_ADMIN_TOKEN)",
            );
        }
        Ok(())
    }
}

/// An [`ArgError`] saying `why`.
pub(crate) fn refuse<T>(why: &str) -> Result<T, ArgError> {
    Err(ArgError(why.to_string()))
}

/// The most `--users` a run takes: each one's token is signed before the run starts.
pub(crate) const MAX_USERS: u64 = 2_000_000;

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
