//! Request ids: one per request, taken from the caller's `X-Request-Id` when it sends a sane
//! one (a gateway's), otherwise minted here, put on the request's span (so every log line of
//! the request carries it) and on the answer, so a buyer's report of an error leads to its
//! log lines.
//!
//! Minted ids are a random per-process prefix and a counter (`5f3a9c01-0000002a`): unique
//! across instances in practice, and a few nanoseconds each, since every request pays it.

use std::sync::{
    LazyLock,
    atomic::{AtomicU64, Ordering},
};

use axum::http::{HeaderMap, HeaderValue};

/// The header that carries it, both ways.
pub(crate) const HEADER: &str = "x-request-id";

/// Longest id taken from a caller.
const MAX_LEN: usize = 64;

static PREFIX: LazyLock<String> =
    LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_string());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The caller's id when it is 1 to 64 visible ASCII characters, otherwise a new one.
pub fn of(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(HEADER)
        && !v.is_empty()
        && v.len() <= MAX_LEN
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{}-{n:08x}", *PREFIX))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_caller_id_is_kept_and_anything_else_replaced() {
        let mut h = HeaderMap::new();
        let first = of(&h);
        let second = of(&h);
        assert_ne!(first, second, "minted ids differ");
        h.insert(HEADER, HeaderValue::from_static("gw-123"));
        assert_eq!(of(&h), "gw-123");
        h.insert(HEADER, HeaderValue::from_str(&"x".repeat(65)).unwrap());
        assert_ne!(of(&h), "x".repeat(65).as_str());
    }
}
