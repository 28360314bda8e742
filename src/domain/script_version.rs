//! The Lua script versions a sale can be pinned to.
//!
//! A leaf of the crate on purpose: settings validate the configured version against this list
//! and the script registry resolves files by it, without either depending on the other.

/// Script versions this build knows, oldest first. New sales use the configured one; a sale
/// keeps the version it was warmed with for its whole life.
pub const KNOWN_VERSIONS: &[&str] = &["v1", "v2"];

/// The number in a version name (`v2` -> 2).
pub fn number(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.parse().ok()
}

/// The newest version this build knows.
pub fn newest() -> &'static str {
    KNOWN_VERSIONS.last().copied().unwrap_or("v1")
}
