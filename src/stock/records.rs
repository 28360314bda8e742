//! The record ledger of script version v6: what a reservation looks like in Redis, and the
//! functions that must agree with the Lua scripts (`deduct.v6`, `release.v6`, `restore.v6`,
//! `prewarm.v6`) on where a record lives and how it reads.
//!
//! - The ledger is one hash per item. Its field is a buyer's hash ([`user_hash`], 4 bytes
//!   big-endian), the value a header, the units its records hold (quantities not released) in
//!   decimal and a newline, then the records of every order of the buyers with that hash.
//! - An order id carries its buyer's hash in bytes 12..16 (the buy path writes it, see
//!   [`super::compact::in_buyers_bucket`]), so an order's field follows from its id alone.
//! - A record is the 16 bytes of the order id, its [`CompactEntry`] (the same text as v5's
//!   entries) and a newline. Entries hold no newline, so a record ends at the first newline
//!   after its id.
//! - A buyer's units are the quantities of their records not released.
//! - The empty field marks the hash, so that it exists with its expiry before the first buy.

use uuid::Uuid;

use super::compact::CompactEntry;
pub use crate::domain::order_id::user_hash;

/// The field the orders of buyer `user` are under.
pub fn user_field(user: &str) -> [u8; 4] {
    user_hash(user).to_be_bytes()
}

/// The field order `id` is under (its bytes 12..16).
pub fn order_field(id: &Uuid) -> [u8; 4] {
    let b = id.as_bytes();
    [b[12], b[13], b[14], b[15]]
}

/// A field's value holding `orders`: the header (the units of those not released) and each
/// order's record, in order.
pub fn field_value<'a>(orders: impl IntoIterator<Item = (&'a Uuid, &'a CompactEntry)>) -> Vec<u8> {
    let mut body = vec![b'\n'];
    let mut held = 0u64;
    for (id, entry) in orders {
        if !entry.released {
            held += u64::from(entry.quantity);
        }
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(entry.encode().as_bytes());
        body.push(b'\n');
    }
    let mut value = held.to_string().into_bytes();
    value.extend_from_slice(&body);
    value
}

/// The header of a field's value (the units its records hold) and the records after it;
/// `None` when the value does not start with one.
pub fn split_header(value: &[u8]) -> Option<(u64, &[u8])> {
    let end = value.iter().position(|b| *b == b'\n')?;
    let units = std::str::from_utf8(&value[..end]).ok()?;
    if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((units.parse().ok()?, &value[end + 1..]))
}

/// The records of one field's value, in order: each order id with its raw entry. A value
/// without a header yields none; one that does not end in a whole record yields its whole
/// records and then stops at the rest, which [`unreadable_tail`] reports.
pub fn records(value: &[u8]) -> impl Iterator<Item = (Uuid, &[u8])> {
    let mut rest = split_header(value).map_or(&[][..], |(_, body)| body);
    std::iter::from_fn(move || {
        let (id, entry, tail) = split_record(rest)?;
        rest = tail;
        Some((id, entry))
    })
}

/// The bytes after the last whole record of `value` (empty when the value is well formed; the
/// whole value when it has no header).
pub fn unreadable_tail(value: &[u8]) -> &[u8] {
    let Some((_, mut rest)) = split_header(value) else {
        return value;
    };
    while let Some((_, _, tail)) = split_record(rest) {
        rest = tail;
    }
    rest
}

/// The first record of `value`: its id, its entry, and the bytes after it.
fn split_record(value: &[u8]) -> Option<(Uuid, &[u8], &[u8])> {
    if value.len() <= 16 {
        return None;
    }
    let (id, after) = value.split_at(16);
    let end = after.iter().position(|b| *b == b'\n')?;
    let id = Uuid::from_slice(id).ok()?;
    Some((id, &after[..end], &after[end + 1..]))
}

/// The raw entry of order `id` in a field's value.
pub fn entry_of<'a>(value: &'a [u8], id: &Uuid) -> Option<&'a [u8]> {
    records(value).find(|(rid, _)| rid == id).map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, quantity: u32, released: bool) -> CompactEntry {
        CompactEntry {
            quantity,
            reserved_at_ms: 1_764_197_000_123,
            idempotency_key: Some("k1".into()),
            user_id: user.into(),
            released,
        }
    }

    #[test]
    fn records_round_trip_even_with_newlines_inside_ids() {
        // An id whose bytes hold newlines and spaces still reads back: the record is cut at
        // the first newline after the 16 bytes of the id.
        let tricky = Uuid::from_bytes(*b"\n\n\n \n\n\n\n\n\n\n\n\n\n\n\n");
        let plain = Uuid::now_v7();
        let (a, b) = (entry("alice", 2, false), entry("bob smith", 1, true));
        let mut value = field_value([(&tricky, &a), (&plain, &b)]);
        assert!(
            value.starts_with(b"2\n"),
            "the header holds the units not released"
        );
        assert_eq!(split_header(&value).map(|(units, _)| units), Some(2));
        let read: Vec<_> = records(&value)
            .map(|(id, e)| (id, CompactEntry::decode(e).unwrap()))
            .collect();
        assert_eq!(
            read,
            vec![
                (tricky, entry("alice", 2, false)),
                (plain, entry("bob smith", 1, true))
            ]
        );
        assert_eq!(
            entry_of(&value, &plain),
            Some(entry("bob smith", 1, true).encode().as_bytes())
        );
        assert_eq!(entry_of(&value, &Uuid::now_v7()), None);
        assert!(unreadable_tail(&value).is_empty());
        value.extend_from_slice(b"broken");
        assert_eq!(records(&value).count(), 2);
        assert_eq!(unreadable_tail(&value), b"broken");
        assert_eq!(records(b"").count(), 0);
        assert_eq!(field_value([]), b"0\n");
        let headless = &value[2..];
        assert_eq!(records(headless).count(), 0);
        assert_eq!(unreadable_tail(headless), headless);
    }

    #[test]
    fn an_orders_field_is_its_buyers_hash() {
        // h = (97 * 31) + 98 = 3105 for "ab"
        assert_eq!(user_field("ab"), 3105u32.to_be_bytes());
        let id = super::super::compact::in_buyers_bucket(Uuid::now_v7(), "ab");
        assert_eq!(order_field(&id), user_field("ab"));
        let derived = super::super::compact::derived_order_id("uid", 1, "ab", "k");
        assert_eq!(order_field(&derived), user_field("ab"));
    }
}
