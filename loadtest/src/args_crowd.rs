//! The flags of `--queue`, the crowd mode, and their validation into a [`CrowdPlan`].

use std::time::Duration;

use clap::Args as ClapArgs;

use crate::args::{ArgError, Args, MAX_USERS, refuse};

/// `--queue`: a crowd of users going through a sale's waiting room.
#[derive(Debug, Clone, ClapArgs)]
pub struct CrowdArgs {
    /// Crowd mode instead of a load: --users simulated users join the sale's waiting room
    /// (some before the start, the rest after it), poll as Retry-After says, buy once when
    /// admitted; the report gives queue times, the fairness of the order, the randomness of
    /// the pre-queue draw, requests per unit sold and waits after sell-out. --connections
    /// sizes the connection pool the users share. Exit code 1 when over 1% of the requests
    /// got no answer.
    #[arg(long, conflicts_with_all = ["rate", "concurrency", "requests", "verify", "report", "pay_share", "endpoint", "retry_on"])]
    pub queue: bool,
    /// Share (0 to 1) of the users who join before the start (the pre-queue, drawn at random
    /// at the start).
    #[arg(long, default_value_t = 0.2)]
    pub pre_queue_share: f64,
    /// With --create-sale: the queue opens at creation and the sale starts this many seconds
    /// later; the pre-queue joins spread over that window.
    #[arg(long, default_value_t = 3)]
    pub pre_queue_secs: u64,
    /// How long the joins after the start spread over.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub join_ramp: Duration,
    /// With --create-sale: places the server admits per second.
    #[arg(long, default_value_t = 1000)]
    pub admit_per_sec: u64,
    /// With --create-sale: most admitted users at once.
    #[arg(long, default_value_t = 1000)]
    pub max_active: u64,
    /// With --create-sale: leading zero bits of the proof of work each join carries (0: none).
    #[arg(long, default_value_t = 0)]
    pub pow_bits: u32,
    /// After the queued crowd, the same crowd against a second sale with the same stock and no
    /// waiting room: each user buys until reserved or sold out, retrying 429 and 503 after
    /// Retry-After; the report compares the requests per unit sold.
    #[arg(long)]
    pub compare_open: bool,
}

/// A validated `--queue` run.
#[derive(Debug, Clone)]
pub(crate) struct CrowdPlan {
    /// The arguments.
    pub args: Args,
    /// Users who join before the start.
    pub pre_queue_users: u64,
    /// Longest the crowd may take (`--duration`, else [`CROWD_DEADLINE`]).
    pub deadline: Duration,
}

/// How long a crowd may take when `--duration` does not say.
pub(crate) const CROWD_DEADLINE: Duration = Duration::from_secs(600);

impl CrowdArgs {
    /// True when a flag of the crowd differs from its default (what a load refuses).
    pub(crate) fn any_set(&self) -> bool {
        self.pre_queue_share != 0.2
            || self.pre_queue_secs != 3
            || self.join_ramp != Duration::from_secs(2)
            || self.admit_per_sec != 1000
            || self.max_active != 1000
            || self.pow_bits != 0
            || self.compare_open
    }
}

impl Args {
    /// Checks a `--queue` run and turns it into a crowd plan.
    ///
    /// # Errors
    /// An [`ArgError`] saying which arguments are out of range or missing.
    pub(crate) fn crowd_plan(self) -> Result<CrowdPlan, ArgError> {
        let c = &self.crowd;
        if !c.queue {
            return refuse("a crowd run needs --queue");
        }
        if !(0.0..=1.0).contains(&c.pre_queue_share) {
            return refuse("--pre-queue-share must be between 0 and 1");
        }
        if c.admit_per_sec == 0 || c.max_active == 0 {
            return refuse("--admit-per-sec and --max-active must be at least 1");
        }
        if c.pow_bits > crate::crowd::MAX_POW_BITS {
            return refuse("--pow-bits is at most 32");
        }
        if c.join_ramp.is_zero() {
            return refuse("--join-ramp must be positive");
        }
        if c.pre_queue_share > 0.0 && c.pre_queue_secs == 0 && self.create_sale {
            return refuse("a pre-queue needs --pre-queue-secs of at least 1");
        }
        self.check_crowd_target()?;
        let pre_queue_users = (self.users as f64 * c.pre_queue_share).round() as u64;
        Ok(CrowdPlan {
            pre_queue_users,
            deadline: self.duration.unwrap_or(CROWD_DEADLINE),
            args: self,
        })
    }

    /// The sale, the crowd's size, the pool and the secrets.
    fn check_crowd_target(&self) -> Result<(), ArgError> {
        if !self.create_sale && self.sale.is_none() {
            return refuse("--queue needs --create-sale or --sale ID --item ID of a queued sale");
        }
        if self.crowd.compare_open && !self.create_sale {
            return refuse("--compare-open needs --create-sale (the open sale gets its stock)");
        }
        if self.users == 0 || self.users > MAX_USERS {
            return refuse("--users must be between 1 and 2000000");
        }
        if self.connections == 0 {
            return refuse("--connections must be at least 1");
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return refuse("--duration must be positive");
        }
        if self.create_sale && (self.stock == 0 || self.per_user_limit == 0) {
            return refuse("--stock and --per-user-limit must be at least 1");
        }
        if !self.base_url.starts_with("http://") || !self.admin_url.starts_with("http://") {
            return refuse("--base-url and --admin-url must be http:// URLs");
        }
        if self.jwt_secret.is_empty() {
            return refuse("--queue needs --jwt-secret (or SECKILL_JWT_SECRET) to sign tokens");
        }
        if self.admin_token.is_empty() {
            return refuse("--queue needs --admin-token (or SECKILL_ADMIN_TOKEN) to read the sale");
        }
        Ok(())
    }
}
