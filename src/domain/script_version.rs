//! The Lua script versions a sale can be pinned to.
//!
//! A leaf of the crate on purpose: settings validate the configured version against this list
//! and the script registry resolves files by it, without either depending on the other.
//!
//! The rule: a release runs the current version and the one before it. New sales are pinned to
//! the current one; a sale warmed with the previous one keeps it for its whole life, which is
//! what makes an upgrade during a live sale safe. The release that makes a new version current
//! deletes the version before the previous one, so upgrades go one release at a time
//! (docs/ARCHITECTURE.md, "Script versions").

/// Script versions this build runs, oldest first: the one before the current, and the current.
pub const KNOWN_VERSIONS: &[&str] = &["v5", "v6"];

/// The version new sales are pinned to.
pub const CURRENT: &str = "v6";

/// Versions earlier releases ran and this one does not: a sale pinned to one of them is refused
/// at prewarm, with the way out.
#[cfg(test)]
pub(crate) const RETIRED_VERSIONS: &[&str] = &["v1", "v2", "v3", "v4"];

/// The number in a version name (`v2` -> 2).
pub fn number(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.parse().ok()
}

/// The first version whose ledger is compact and bucketed, with order ids derived from
/// idempotency keys in place of an idempotency hash (see `stock::compact`).
pub(crate) const COMPACT_FROM: u32 = 5;

/// True when sales pinned to `version` keep the compact ledger (v5 on).
pub fn has_compact_ledger(version: &str) -> bool {
    number(version).is_some_and(|n| n >= COMPACT_FROM)
}

/// The first version whose item keys carry the sale's uid in their hash tag (v6: the v5
/// scripts under those keys; see `stores::redis::keys`).
pub(crate) const UID_KEYS_FROM: u32 = 6;

/// True when the Redis keys of sales pinned to `version` carry the sale's uid (v6 on).
pub fn keys_carry_uid(version: &str) -> bool {
    number(version).is_some_and(|n| n >= UID_KEYS_FROM)
}

/// True when this build runs sales pinned to `version`.
pub(crate) fn is_live(version: &str) -> bool {
    KNOWN_VERSIONS.contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_version_and_the_one_before_it_are_live() {
        assert_eq!(KNOWN_VERSIONS.last(), Some(&CURRENT));
        assert_eq!(KNOWN_VERSIONS.len(), 2, "the current and the one before");
        let n = number(CURRENT).unwrap();
        assert_eq!(number(KNOWN_VERSIONS[0]), Some(n - 1));
        for retired in RETIRED_VERSIONS {
            assert!(!is_live(retired));
        }
    }
}
