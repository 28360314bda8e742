//! The sections of the settings below the servers: identity, the listeners, confirmation, the
//! token buckets, sales, the background jobs, caches and logs, each with its defaults.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Buyer token checks beyond the signature and the expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtSettings {
    /// Required `iss` (empty: not checked).
    pub issuer: String,
    /// Required `aud` (empty: not checked).
    pub audience: String,
    /// Longest accepted token lifetime in seconds (`exp - iat`, or `exp - now` without `iat`);
    /// 0 switches the check off.
    pub max_lifetime_secs: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: String::new(),
            max_lifetime_secs: 86_400,
        }
    }
}

/// How the buy endpoint learns who the buyer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIdentity {
    /// `Authorization: Bearer <HS256 JWT>`; the user is the token's `sub`.
    Jwt,
    /// `X-User-Id` set by an authenticating gateway in front of the service.
    TrustedHeader,
}

/// HTTP listener settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to bind; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// Requests served at once before new ones are shed with 503; bounds memory under a flood.
    pub max_in_flight: u64,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds a client has to send a request's headers, counted from when the server waits
    /// for them (on a kept-alive connection, the wait for the next request counts too).
    pub header_timeout_secs: u64,
    /// Seconds without a new request after which a connection is closed.
    pub idle_timeout_secs: u64,
    /// Largest request head (request line and headers) in bytes; larger ones get 431.
    pub max_header_bytes: u64,
    /// Connections open at once per listener; past it a new connection gets a canned 503.
    pub max_connections: u64,
}

/// What a 202 waits for (docs/ARCHITECTURE.md says what each survives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmMode {
    /// The script has written the reservation on the Redis master.
    Ledger,
    /// ... and at least `SECKILL_REDIS_MIN_REPLICAS` replicas acknowledged it (`WAIT`, once
    /// per batch): a failover to one of them keeps it.
    Replica,
    /// ... and the Kafka broker acknowledged the order (`acks=all`): a rebuild from MySQL
    /// after total Redis data loss keeps it.
    Kafka,
}

/// Buy confirmation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuySettings {
    /// `ledger`, `replica` or `kafka`.
    pub confirm: ConfirmMode,
    /// Longest wait for the confirmation; past it the buyer gets 503 `unconfirmed` (the
    /// reservation may stand; a retry with the same idempotency key returns it).
    pub confirm_timeout_ms: u64,
}

/// Token-bucket settings. A rate of 0 switches that limiter off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Buy requests per second admitted in total by one instance.
    pub global_per_sec: u64,
    /// Burst of the global bucket.
    pub global_burst: u64,
    /// Buy requests per second admitted per user.
    pub per_user_per_sec: u64,
    /// Burst of each user's bucket.
    pub per_user_burst: u64,
    /// When the per-IP bucket applies: `auto` (only when trusted proxies are configured, so the
    /// address is the client's, not a load balancer's), `on` or `off`.
    pub per_ip: PerIpMode,
    /// Buy requests per second per client address (IPv6 addresses count per /64 network).
    pub per_ip_per_sec: u64,
    /// Burst of each IP's bucket.
    pub per_ip_burst: u64,
    /// Payment notifications per second one instance takes (its burst is the same number).
    pub payments_per_sec: u64,
}

/// When the per-IP token bucket applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerIpMode {
    /// Only when `trusted_proxies` is set: behind a proxy that is not trusted, every request
    /// would come from the proxy's address and share one bucket.
    Auto,
    /// Always (the service faces clients directly).
    On,
    /// Never.
    Off,
}

/// Sale lifecycle settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaleSettings {
    /// Seconds every Redis key of a sale outlives the sale's end, so late consumers and
    /// reconciliation still see the ledger.
    pub grace_secs: u64,
    /// Sales starting within this many seconds are warmed on creation; later ones by the
    /// scheduler when they come this close.
    pub prewarm_lead_secs: u64,
    /// Script version new sales are pinned to: `v6` (the default) or `v5`, whose item keys do
    /// not carry the sale's uid.
    pub script_version: String,
}

/// Outbox relay settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    /// How often the relay scans the outbox.
    pub interval_ms: u64,
    /// A reservation unacknowledged for this long is re-emitted.
    pub redeliver_after_ms: u64,
}

/// Order consumer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSettings {
    /// Most messages persisted in one MySQL transaction.
    pub batch_max: u64,
    /// Longest wait for a batch to fill, in milliseconds.
    pub batch_wait_ms: u64,
    /// Seconds a partition with waiting orders may go without progress while this member holds
    /// none of the stalled ones before it leaves and rejoins the group (0 switches the
    /// watchdog off). See docs/ARCHITECTURE.md on the broker bug this covers.
    pub stall_rejoin_secs: u64,
}

/// Reconciliation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileSettings {
    /// Seconds between periodic runs inside `serve`/`all`; 0 switches the periodic job off. A
    /// live sale's run compares counters only (a few Redis reads per item); an ended sale's,
    /// and every run asked for, compares every ledger entry with every order.
    pub interval_secs: u64,
    /// A ledger entry younger than this may still be in flight and is not reported missing.
    pub ledger_grace_secs: u64,
    /// Seconds after a sale's end during which it is still reconciled periodically.
    pub ended_window_secs: u64,
}

/// Order lifecycle settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSettings {
    /// How often the expiry job looks for due orders (one leader); 0 switches it off.
    pub expiry_interval_ms: u64,
    /// Topic of lifecycle events (paid, cancelled, expired) for downstream systems.
    pub events_topic: String,
}

/// Sale page cache settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Seconds a sale detail lives in Redis (before jitter).
    pub redis_ttl_secs: u64,
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `seckill=debug,info`; `RUST_LOG` wins when set.
    pub filter: String,
    /// On the public listener, one request in this many gets a tracing span (1: every one);
    /// the others are counted, and logged without one when they fail or are slow.
    pub span_every: u64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_in_flight: 20_000,
            request_timeout_secs: 10,
            shutdown_grace_secs: 10,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
        }
    }
}

impl Default for BuySettings {
    fn default() -> Self {
        Self {
            confirm: ConfirmMode::Replica,
            confirm_timeout_ms: 500,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            global_per_sec: 100_000,
            global_burst: 20_000,
            per_user_per_sec: 5,
            per_user_burst: 10,
            per_ip: PerIpMode::Auto,
            per_ip_per_sec: 50,
            per_ip_burst: 100,
            payments_per_sec: 1_000,
        }
    }
}

impl Default for SaleSettings {
    fn default() -> Self {
        Self {
            grace_secs: 86_400,
            prewarm_lead_secs: 3_600,
            script_version: crate::domain::script_version::CURRENT.into(),
        }
    }
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            redeliver_after_ms: 10_000,
        }
    }
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch_max: 2_000,
            batch_wait_ms: 20,
            stall_rejoin_secs: 10,
        }
    }
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval_secs: 30,
            ledger_grace_secs: 30,
            ended_window_secs: 3_600,
        }
    }
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            expiry_interval_ms: 1_000,
            events_topic: "seckill.order-events".into(),
        }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { redis_ttl_secs: 60 }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
            span_every: 100,
        }
    }
}
