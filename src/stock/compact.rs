//! The compact ledger of script version v5: what a reservation looks like in Redis, and the
//! functions that must agree with the Lua scripts (`deduct.v5`, `release.v5`, `restore.v5`,
//! `prewarm.v5`) on where an entry lives.
//!
//! - The ledger and the buyers' units share `meta.buckets` small hashes (`<ledger>:<n>`), so
//!   each stays listpack-encoded (about 90 bytes per reservation, where v4 held about 550).
//! - An order id is its 16 bytes; its bucket is the big-endian `u32` in bytes 12..16 modulo the
//!   bucket count.
//! - A user's bucket is [`user_hash`] modulo the count. The buy path writes the buyer's hash
//!   into bytes 12..16 of each order id ([`in_buyers_bucket`]), so one request reads and writes
//!   one bucket; the scripts stay correct with any id, touching a second bucket.
//! - In a bucket a 16-byte field is an order id, any other a buyer ([`user_field`]).
//! - An entry is `"quantity reserved_at key user"`: the time in Unix ms in base 36, the
//!   idempotency key empty when none was sent, and a leading `-` once the order was released.
//! - There is no idempotency hash: a request with a key gets the order id
//!   [`derived_order_id`], so a retry finds its first order under the same id.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Units of initial stock per bucket (prewarm.v5 divides by the same number). A unit sold is an
/// entry and, at most, a buyer, so a bucket holds about twice this many fields, below Redis's
/// `hash-max-listpack-entries` (128 by default).
#[cfg(test)]
pub(crate) const UNITS_PER_BUCKET: u64 = 32;

/// Most buckets an item gets (prewarm.v5 caps the same): a warm or refresh touches every bucket
/// key, so this bounds how long one blocks Redis. Items above 524,288 units hold more entries
/// per bucket.
pub const MAX_BUCKETS: u32 = 16_384;

/// The bucket count prewarm.v5 gives an item of `initial_stock` units.
#[cfg(test)]
pub(crate) fn buckets_for(initial_stock: u64) -> u32 {
    u32::try_from(
        initial_stock
            .div_ceil(UNITS_PER_BUCKET)
            .clamp(1, u64::from(MAX_BUCKETS)),
    )
    .unwrap_or(MAX_BUCKETS)
}

/// The bucket of an order id.
pub(crate) fn order_bucket(order_id: &Uuid, buckets: u32) -> u32 {
    let b = order_id.as_bytes();
    u32::from_be_bytes([b[12], b[13], b[14], b[15]]) % buckets.max(1)
}

pub use crate::domain::order_id::user_hash;

/// The bucket of a buyer.
pub(crate) fn user_bucket(user: &str, buckets: u32) -> u32 {
    user_hash(user) % buckets.max(1)
}

/// `id` with the buyer's hash in bytes 12..16, so the order lives in its buyer's bucket
/// whatever the bucket count.
pub fn in_buyers_bucket(id: Uuid, user: &str) -> Uuid {
    crate::domain::order_id::with_buyer(id, user)
}

/// A buyer's field in a bucket: the id, with a trailing NUL when it is 16 bytes long (the
/// length of an order id; user ids hold no control characters).
pub(crate) fn user_field(user: &str) -> Vec<u8> {
    let mut field = user.as_bytes().to_vec();
    if field.len() == 16 {
        field.push(0);
    }
    field
}

/// The buyer a bucket field names; `None` for an order id (16 bytes).
pub(crate) fn user_of_field(field: &[u8]) -> Option<String> {
    if field.len() == 16 || field.is_empty() {
        return None;
    }
    let user = match field {
        [head @ .., 0] if head.len() == 16 => head,
        _ => field,
    };
    Some(String::from_utf8_lossy(user).into_owned())
}

/// The key of bucket `n` of a bucketed hash (`base` is the item's ledger or buyers key).
pub(crate) fn bucket_key(base: &str, n: u32) -> String {
    format!("{base}:{n}")
}

/// The order id of a request that carries an idempotency key: the same for every retry of it,
/// different for every sale, item, buyer and key (a UUIDv8 of a SHA-256 of the four).
pub fn derived_order_id(sale_uid: &str, item_id: u64, user: &str, key: &str) -> Uuid {
    let mut h = Sha256::new();
    for part in [
        "seckill order".as_bytes(),
        sale_uid.as_bytes(),
        &item_id.to_be_bytes(),
        user.as_bytes(),
        key.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    in_buyers_bucket(Uuid::new_v8(bytes), user)
}

/// One reservation as the compact ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactEntry {
    /// Units reserved.
    pub quantity: u32,
    /// Reservation time, Unix ms.
    pub reserved_at_ms: i64,
    /// The buyer's idempotency key, if one was sent.
    pub idempotency_key: Option<String>,
    /// The buyer.
    pub user_id: String,
    /// True once the order's units were given back (release.v5).
    pub released: bool,
}

impl CompactEntry {
    /// The entry's bytes.
    pub fn encode(&self) -> String {
        format!(
            "{}{} {} {} {}",
            if self.released { "-" } else { "" },
            self.quantity,
            base36(self.reserved_at_ms),
            self.idempotency_key.as_deref().unwrap_or(""),
            self.user_id
        )
    }

    /// Parses an entry; `None` when it is not one.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let raw = std::str::from_utf8(raw).ok()?;
        let (released, raw) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let mut parts = raw.splitn(4, ' ');
        let quantity = parts.next()?.parse().ok()?;
        let reserved_at_ms = from_base36(parts.next()?)?;
        let key = parts.next()?;
        let user_id = parts.next()?;
        if quantity == 0 || user_id.is_empty() {
            return None;
        }
        Some(Self {
            quantity,
            reserved_at_ms,
            idempotency_key: (!key.is_empty()).then(|| key.to_string()),
            user_id: user_id.to_string(),
            released,
        })
    }
}

/// `n` (≥ 0) in lowercase base 36, as the entries hold reservation times.
pub fn base36(n: i64) -> String {
    let mut n = n.max(0) as u64;
    let mut digits = Vec::new();
    loop {
        let d = (n % 36) as u8;
        digits.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

fn from_base36(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 12 {
        return None;
    }
    i64::from_str_radix(s, 36).ok().filter(|n| *n >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for e in [
            CompactEntry {
                quantity: 2,
                reserved_at_ms: 1_764_197_000_123,
                idempotency_key: Some("k-1".into()),
                user_id: "alice with spaces".into(),
                released: false,
            },
            CompactEntry {
                quantity: 1,
                reserved_at_ms: 0,
                idempotency_key: None,
                user_id: "u".into(),
                released: true,
            },
        ] {
            assert_eq!(CompactEntry::decode(e.encode().as_bytes()), Some(e));
        }
        assert_eq!(
            CompactEntry {
                quantity: 3,
                reserved_at_ms: 1_764_197_000_123,
                idempotency_key: None,
                user_id: "bob".into(),
                released: false
            }
            .encode(),
            "3 miglcddn  bob"
        );
        for bad in ["", "x 1 k u", "1 !! k u", "0 1 k u", "1 1 k ", "1 1"] {
            assert_eq!(CompactEntry::decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn base36_matches_the_standard_radix() {
        for n in [0, 35, 36, 1_764_197_000_123, 253_402_300_799_999] {
            assert_eq!(from_base36(&base36(n)), Some(n));
        }
        assert_eq!(base36(35), "z");
    }

    #[test]
    fn buckets_follow_the_stock_and_spread_ids() {
        assert_eq!(buckets_for(0), 1);
        assert_eq!(buckets_for(32), 1);
        assert_eq!(buckets_for(33), 2);
        assert_eq!(buckets_for(500_000), 15_625);
        assert_eq!(buckets_for(1_000_000_000), MAX_BUCKETS);
        let n = 100;
        let mut counts = vec![0u32; n as usize];
        for _ in 0..10_000 {
            counts[order_bucket(&Uuid::now_v7(), n) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (50..=170).contains(c)), "{counts:?}");
        // h = ((97 * 31) + 98) = 3105 for "ab"
        assert_eq!(user_bucket("ab", 1_000_000), 3105);
        assert_eq!(user_bucket("ab", 7), 3105 % 7);
        let id = in_buyers_bucket(Uuid::now_v7(), "ab");
        assert_eq!(id.get_version_num(), 7);
        for n in [1, 7, 100, MAX_BUCKETS] {
            assert_eq!(order_bucket(&id, n), user_bucket("ab", n));
        }
        assert_eq!(
            order_bucket(&derived_order_id("u", 1, "ab", "k"), 100),
            user_bucket("ab", 100)
        );
    }

    #[test]
    fn buyer_fields_never_look_like_order_ids() {
        for user in ["u", "sixteen-bytes-id", "seventeen-bytes-x"] {
            let field = user_field(user);
            assert_ne!(field.len(), 16);
            assert_eq!(user_of_field(&field).as_deref(), Some(user));
        }
        assert_eq!(user_of_field(Uuid::now_v7().as_bytes()), None);
    }

    #[test]
    fn derived_ids_differ_by_every_part_and_repeat_for_the_same_request() {
        let a = derived_order_id("uid", 1, "u", "k");
        assert_eq!(a, derived_order_id("uid", 1, "u", "k"));
        assert_eq!(a.get_version_num(), 8);
        for other in [
            derived_order_id("uid2", 1, "u", "k"),
            derived_order_id("uid", 2, "u", "k"),
            derived_order_id("uid", 1, "u2", "k"),
            derived_order_id("uid", 1, "u", "k2"),
            derived_order_id("uid", 1, "uk", ""),
        ] {
            assert_ne!(a, other);
        }
    }
}
