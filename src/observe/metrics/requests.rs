//! The metrics of what requests meet: the HTTP listeners, the buy path, the Lua scripts and the
//! sale page cache.

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec};

use super::{LATENCY_BUCKETS, Registrar};

/// HTTP requests and connections.
pub struct HttpMetrics {
    /// HTTP requests by matched route and status code.
    pub requests: IntCounterVec,
    /// Connections open now, by listener (`public`, `admin`).
    pub connections: IntGaugeVec,
    /// Connections refused over a listener's cap, by listener.
    pub connections_refused: IntCounterVec,
    /// Connections closed by the server, by listener and reason (`header_timeout`, `idle`).
    pub connections_closed: IntCounterVec,
}

impl HttpMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            connections: r.gauge_vec(
                "http_connections",
                "HTTP connections open now, by listener",
                &["listener"],
            ),
            connections_refused: r.counter_vec(
                "http_connections_refused_total",
                "HTTP connections refused because the listener had its maximum open",
                &["listener"],
            ),
            connections_closed: r.counter_vec(
                "http_connections_closed_total",
                "HTTP connections the server closed, by reason (header_timeout, idle)",
                &["listener", "reason"],
            ),
            requests: r.counter_vec(
                "http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
        }
    }
}

/// The buy path.
pub struct BuyMetrics {
    /// Buy answers by outcome code (`reserved`, `sold_out`, `rate_limited`, ...).
    pub outcomes: IntCounterVec,
    /// Buy handler latency (answers from memory, before the body is read, count as 0).
    pub latency: Histogram,
    /// Requests turned away by a gate, by gate (`global`, `user`, `ip`, `sold_out_flag`).
    pub gate_rejections: IntCounterVec,
}

impl BuyMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            outcomes: r.counter_vec(
                "buy_outcomes_total",
                "Buy answers by outcome code",
                &["code"],
            ),
            latency: r.histogram(
                "buy_duration_seconds",
                "Buy handler latency",
                LATENCY_BUCKETS.to_vec(),
            ),
            gate_rejections: r.counter_vec(
                "gate_rejections_total",
                "Buy requests turned away by a gate",
                &["gate"],
            ),
        }
    }
}

/// The Lua scripts.
pub struct ScriptMetrics {
    /// Lua script latency by script.
    pub latency: HistogramVec,
    /// Lua script failures by script.
    pub errors: IntCounterVec,
    /// Scripts loaded again after Redis answered NOSCRIPT (restart, failover, SCRIPT FLUSH).
    pub reloads: IntCounter,
    /// Buy requests per call of a batching deduct script.
    pub deduct_batch_size: Histogram,
}

impl ScriptMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            latency: r.histogram_vec(
                "script_duration_seconds",
                "Lua script latency",
                LATENCY_BUCKETS.to_vec(),
                &["script"],
            ),
            errors: r.counter_vec(
                "script_errors_total",
                "Lua script calls that failed",
                &["script"],
            ),
            reloads: r.counter(
                "script_reloads_total",
                "Scripts loaded again after NOSCRIPT",
            ),
            deduct_batch_size: r.histogram(
                "deduct_batch_size",
                "Buy requests per call of a batching deduct script",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
        }
    }
}

/// The sale page cache.
pub struct CacheMetrics {
    /// Sale page cache lookups answered, by level (`local`, `redis`, `mysql`).
    pub hits: IntCounterVec,
    /// Sale page lookups a level could not answer, by level (`page`, `local`, `redis`): each
    /// goes on to the next level.
    pub misses: IntCounterVec,
    /// Sale page lookups that had to wait for another request's fill.
    pub single_flight_waits: IntCounter,
    /// Unknown sale ids turned away by the Bloom filter or a negative entry.
    pub rejections: IntCounterVec,
}

impl CacheMetrics {
    pub(super) fn register(r: &mut Registrar) -> Self {
        Self {
            hits: r.counter_vec(
                "sale_cache_hits_total",
                "Sale page lookups answered, by level",
                &["level"],
            ),
            misses: r.counter_vec(
                "sale_cache_misses_total",
                "Sale page lookups a cache level could not answer, by level",
                &["level"],
            ),
            single_flight_waits: r.counter(
                "sale_cache_single_flight_waits_total",
                "Sale page lookups that waited for another request's fill",
            ),
            rejections: r.counter_vec(
                "sale_cache_rejections_total",
                "Unknown sale ids turned away without a MySQL query",
                &["by"],
            ),
        }
    }
}
