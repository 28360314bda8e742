//! What an order id says about its order, so that ids which cannot be a buyer's are answered
//! from memory and a reservation not yet in MySQL is looked for in its own item only.
//!
//! A fresh order id is a UUIDv7 (the reservation time in its first 48 bits) whose last six
//! bytes are not random:
//!
//! | bytes | holds |
//! |---|---|
//! | 0..6 | Unix milliseconds (UUIDv7) |
//! | 10..12 | the item's tag: the low 16 bits of its id ([`item_tag`]) |
//! | 12..16 | the buyer's hash ([`user_hash`]), big-endian |
//!
//! The 26 bits between the version and the item's tag come from a counter with a random start,
//! so one process never mints the same id twice within a millisecond (a UUIDv7's own counter
//! lives in the bytes the tags take).
//! An order bought with an idempotency key on a compact-ledger sale gets a UUIDv8 derived from
//! the key instead (`stock::compact::derived_order_id`): it carries the buyer's hash, not the
//! item's tag. Ids of either kind from before [`TAGGED_SINCE`] (reserved by an earlier release)
//! carry neither for sure, and are looked up in MySQL alone.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// From this time on (Unix ms), every fresh order id carries the buyer's hash and the item's
/// tag. An older UUIDv7 may have been minted by an earlier release without them.
pub(crate) const TAGGED_SINCE_MS: u64 = 1_796_601_600_000; // 2026-12-07T00:00:00Z

/// How far ahead of this server's clock a UUIDv7's time may be (another server's clock).
const CLOCK_SKEW_SECS: i64 = 60;

/// A buyer's hash: `h = h * 31 + byte (mod 2^32)` over the id's bytes (the compact ledger's
/// scripts compute the same).
pub fn user_hash(user: &str) -> u32 {
    user.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// The tag an item's order ids carry.
pub(crate) fn item_tag(item_id: u64) -> u16 {
    (item_id & 0xffff) as u16
}

/// `id` with the buyer's hash in bytes 12..16.
pub(crate) fn with_buyer(id: Uuid, user: &str) -> Uuid {
    let mut bytes = *id.as_bytes();
    bytes[12..16].copy_from_slice(&user_hash(user).to_be_bytes());
    Uuid::from_bytes(bytes)
}

/// A fresh order id for `user`'s reservation of `item_id`, stamped now.
pub fn fresh(item_id: u64, user: &str) -> Uuid {
    static COUNTER: std::sync::LazyLock<std::sync::atomic::AtomicU32> =
        std::sync::LazyLock::new(|| std::sync::atomic::AtomicU32::new(rand::random()));
    let ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0x03ff_ffff;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    // 12 counter bits after the version, 6 after the variant, 8 in byte 9.
    b[6] = 0x70 | ((n >> 22) & 0x0f) as u8;
    b[7] = (n >> 14) as u8;
    b[8] = 0x80 | ((n >> 8) & 0x3f) as u8;
    b[9] = n as u8;
    b[10..12].copy_from_slice(&item_tag(item_id).to_be_bytes());
    b[12..16].copy_from_slice(&user_hash(user).to_be_bytes());
    Uuid::from_bytes(b)
}

/// The id's UUIDv7 time in Unix ms (`None` for other versions).
fn v7_millis(id: &Uuid) -> Option<u64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs * 1_000 + u64::from(nanos) / 1_000_000)
}

/// True when the id is of a layout that carries the buyer's hash for sure.
fn carries_buyer(id: &Uuid) -> bool {
    match id.get_version_num() {
        7 => v7_millis(id).is_some_and(|ms| ms >= TAGGED_SINCE_MS),
        8 => true,
        _ => false,
    }
}

/// False when `id` cannot name an order of `user`: not a version this service mints, stamped
/// in the future, or carrying another buyer's hash. Answered without a store.
pub(crate) fn could_be_users(id: Uuid, user: &str, now: DateTime<Utc>) -> bool {
    match id.get_version_num() {
        7 => {
            let Some(ms) = v7_millis(&id) else {
                return false;
            };
            if ms as i64 > (now.timestamp() + CLOCK_SKEW_SECS) * 1_000 {
                return false;
            }
        }
        8 => {}
        _ => return false,
    }
    !carries_buyer(&id) || id.as_bytes()[12..16] == user_hash(user).to_be_bytes()
}

/// Where to look for a reservation not yet in MySQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedgerScope {
    /// The live items whose id has this tag (a fresh id).
    Tagged(u16),
    /// Every live item (an id derived from an idempotency key, which names no item).
    Every,
    /// None: an id from an earlier release; such a reservation reached MySQL long ago.
    Nowhere,
}

/// Where a reservation `id` may be waiting for MySQL.
pub(crate) fn ledger_scope(id: &Uuid) -> LedgerScope {
    match id.get_version_num() {
        7 if carries_buyer(id) => {
            let b = id.as_bytes();
            LedgerScope::Tagged(u16::from_be_bytes([b[10], b[11]]))
        }
        8 => LedgerScope::Every,
        _ => LedgerScope::Nowhere,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_id_names_its_buyer_and_its_item() {
        let now = Utc::now();
        let id = fresh(70_001, "alice");
        assert_eq!(id.get_version_num(), 7);
        assert!(could_be_users(id, "alice", now));
        assert!(!could_be_users(id, "bob", now), "another buyer's hash");
        assert_eq!(ledger_scope(&id), LedgerScope::Tagged(item_tag(70_001)));
        // Ids of one buyer and item in one millisecond still differ.
        let ids: std::collections::HashSet<Uuid> =
            (0..1_000).map(|_| fresh(70_001, "alice")).collect();
        assert_eq!(ids.len(), 1_000);
    }

    #[test]
    fn random_and_future_ids_name_no_order() {
        let now = Utc::now();
        assert!(!could_be_users(Uuid::new_v4(), "alice", now), "v4");
        assert!(
            !could_be_users(Uuid::now_v7(), "alice", now),
            "a random v7 of today has a random hash"
        );
        let future = with_buyer(
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                (now.timestamp() + 3_600) as u64,
                0,
            )),
            "alice",
        );
        assert!(!could_be_users(future, "alice", now));
    }

    #[test]
    fn ids_derived_from_keys_carry_the_buyer_and_no_item() {
        let now = Utc::now();
        let derived = with_buyer(Uuid::new_v8([7; 16]), "alice");
        assert!(could_be_users(derived, "alice", now), "v8 ids are found");
        assert!(!could_be_users(derived, "bob", now));
        assert_eq!(ledger_scope(&derived), LedgerScope::Every);
    }

    #[test]
    fn ids_from_before_the_tags_are_looked_up_in_mysql_alone() {
        let now = Utc::now();
        let old = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            TAGGED_SINCE_MS / 1_000 - 86_400,
            0,
        ));
        assert!(could_be_users(old, "anyone", now));
        assert_eq!(ledger_scope(&old), LedgerScope::Nowhere);
    }
}
