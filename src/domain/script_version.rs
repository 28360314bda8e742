//! The Lua script versions a sale can be pinned to.
//!
//! A leaf of the crate on purpose: settings validate the configured version against this list
//! and the script registry resolves files by it, without either depending on the other.

/// Script versions this build knows, oldest first. New sales use the configured one; a sale
/// keeps the version it was warmed with for its whole life.
pub const KNOWN_VERSIONS: &[&str] = &["v1", "v2", "v3", "v4", "v5"];

/// The number in a version name (`v2` -> 2).
pub fn number(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.parse().ok()
}

/// The first version whose Redis state carries its sale's identity and can be rebuilt from
/// MySQL after data loss.
pub const RECOVERABLE_FROM: u32 = 3;

/// True when sales pinned to `version` stamp their state with the sale's uid and can be
/// rebuilt from MySQL (v3 on).
pub fn is_recoverable(version: &str) -> bool {
    number(version).is_some_and(|n| n >= RECOVERABLE_FROM)
}

/// The first version whose Redis state can take units back (cancelled and expired orders).
pub const LIFECYCLE_FROM: u32 = 4;

/// True when sales pinned to `version` have payment windows, cancellation and expiry (v4 on).
pub fn has_lifecycle(version: &str) -> bool {
    number(version).is_some_and(|n| n >= LIFECYCLE_FROM)
}

/// The first version whose ledger is compact and bucketed, with order ids derived from
/// idempotency keys in place of an idempotency hash (see `stock::compact`).
pub const COMPACT_FROM: u32 = 5;

/// True when sales pinned to `version` keep the compact ledger (v5 on).
pub fn has_compact_ledger(version: &str) -> bool {
    number(version).is_some_and(|n| n >= COMPACT_FROM)
}

/// The newest version this build knows.
pub fn newest() -> &'static str {
    KNOWN_VERSIONS.last().copied().unwrap_or("v1")
}
