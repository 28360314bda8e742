//! The ticket a join answers: the sale, the buyer and the place, signed, so that any instance
//! answers a poll from memory. The same join answers the same ticket (nothing in it changes).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Format version, the first byte.
const VERSION: u8 = 1;
/// Bytes of the signature kept (96 bits: a forger must guess 2^96 tags, one request each).
const MAC_LEN: usize = 12;
/// Longest encoded ticket accepted (a 128-byte user id gives about 220 characters).
pub(crate) const MAX_TICKET_LEN: usize = 256;

/// Whether a place was drawn at random (the pre-queue) or given in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Joined after the start: position = pre-queue size + index.
    Arrival,
    /// Joined before the start: position drawn at the start.
    PreQueue,
}

/// A place in a waiting room, as the join script returns it (see `lua/queue_join.v1.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place(pub u64);

impl Place {
    /// Pre-queue or arrival order.
    pub fn kind(self) -> Kind {
        if self.0 & 1 == 1 {
            Kind::PreQueue
        } else {
            Kind::Arrival
        }
    }

    /// Index among the joins of its kind, in arrival order.
    pub fn index(self) -> u64 {
        (self.0 >> 1) & ((1 << 26) - 1)
    }

    /// Seconds from the room's opening to the join.
    pub fn joined_secs(self) -> u64 {
        self.0 >> 27
    }
}

/// A verified ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The sale.
    pub sale_id: u64,
    /// The place.
    pub place: Place,
    /// The buyer (the admission token's subject).
    pub user: String,
}

/// Signs and checks tickets with one key.
#[derive(Clone)]
pub struct TicketKey(Hmac<Sha256>);

impl TicketKey {
    /// A key derived from `secret` for tickets only.
    pub fn derive(secret: &[u8]) -> Self {
        Self(super::derived_mac(
            secret,
            b"seckill/waiting-room/ticket/v1",
        ))
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.0.clone();
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// The ticket as a URL-safe string: version, sale and place as LEB128 varints, the user
    /// id, the tag (short: every poll carries it in its URL).
    pub fn encode(&self, t: &Ticket) -> String {
        let user = t.user.as_bytes();
        let mut payload = Vec::with_capacity(21 + user.len() + MAC_LEN);
        payload.push(VERSION);
        put_varint(&mut payload, t.sale_id);
        put_varint(&mut payload, t.place.0);
        payload.extend_from_slice(user);
        let mac = self.mac(&payload);
        payload.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The ticket behind `raw`, if this key signed it.
    pub fn decode(&self, raw: &str) -> Option<Ticket> {
        if raw.len() > MAX_TICKET_LEN {
            return None;
        }
        // Decoded on the stack: a poll allocates nothing for its ticket but the user id.
        let mut buf = [0u8; MAX_TICKET_LEN];
        let n = URL_SAFE_NO_PAD.decode_slice(raw, &mut buf).ok()?;
        let bytes = &buf[..n];
        if bytes.len() < 3 + 1 + MAC_LEN || bytes[0] != VERSION {
            return None;
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let expected = self.mac(payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], mac)) {
            return None;
        }
        let rest = &payload[1..];
        let (sale_id, rest) = take_varint(rest)?;
        let (place, rest) = take_varint(rest)?;
        let user = std::str::from_utf8(rest).ok().filter(|u| !u.is_empty())?;
        Some(Ticket {
            sale_id,
            place: Place(place),
            user: user.to_owned(),
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            sale_id: 42,
            place: Place(7 * (1 << 27) + 5 * 2 + 1),
            user: "alice".into(),
        }
    }

    #[test]
    fn a_ticket_reads_back_as_signed_and_names_its_place() {
        let key = TicketKey::derive(b"secret");
        let raw = key.encode(&ticket());
        assert_eq!(raw, key.encode(&ticket()), "the same join, the same ticket");
        let t = key.decode(&raw).unwrap();
        assert_eq!(t, ticket());
        assert_eq!(t.place.kind(), Kind::PreQueue);
        assert_eq!((t.place.index(), t.place.joined_secs()), (5, 7));
    }

    #[test]
    fn a_changed_or_foreign_ticket_is_refused() {
        let key = TicketKey::derive(b"secret");
        let raw = key.encode(&ticket());
        assert!(TicketKey::derive(b"other").decode(&raw).is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(&raw).unwrap();
        bytes[1] ^= 1; // another sale
        assert!(key.decode(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        assert!(key.decode("not a ticket").is_none());
        assert!(key.decode(&"A".repeat(MAX_TICKET_LEN + 1)).is_none());
    }
}
