//! The ticket a join answers: the sale, the buyer and the place, signed, so that any instance
//! answers a poll from memory. The same join answers the same ticket (nothing in it changes).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Format version, the first byte.
const VERSION: u8 = 1;
/// Bytes of the signature kept (128 bits).
const MAC_LEN: usize = 16;
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

    /// The ticket as a URL-safe string.
    pub fn encode(&self, t: &Ticket) -> String {
        let user = t.user.as_bytes();
        let mut payload = Vec::with_capacity(18 + user.len() + MAC_LEN);
        payload.push(VERSION);
        payload.extend_from_slice(&t.sale_id.to_be_bytes());
        payload.extend_from_slice(&t.place.0.to_be_bytes());
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
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        if bytes.len() < 17 + 1 + MAC_LEN || bytes[0] != VERSION {
            return None;
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let expected = self.mac(payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], mac)) {
            return None;
        }
        let sale_id = u64::from_be_bytes(payload[1..9].try_into().ok()?);
        let place = Place(u64::from_be_bytes(payload[9..17].try_into().ok()?));
        let user = String::from_utf8(payload[17..].to_vec()).ok()?;
        Some(Ticket {
            sale_id,
            place,
            user,
        })
    }
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
        bytes[8] ^= 1; // another sale
        assert!(key.decode(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
        assert!(key.decode("not a ticket").is_none());
        assert!(key.decode(&"A".repeat(MAX_TICKET_LEN + 1)).is_none());
    }
}
