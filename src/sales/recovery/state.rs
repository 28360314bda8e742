//! An item's Redis state as its orders in MySQL describe it: the ledger, buyers, idempotency and
//! released hashes a rebuild writes back.

use std::collections::BTreeMap;

use crate::{
    domain::order_reserved::OrderReserved, stock::compact::CompactEntry, stores::mysql::orders,
};

/// Field/value pairs of one hash.
pub(super) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// An item's state rebuilt from its orders.
pub(super) struct Rebuilt {
    pub(super) ledger: Pairs,
    pub(super) buyers: Pairs,
    pub(super) idem: Pairs,
    pub(super) released: Pairs,
}

/// The ledger, buyers, idempotency and released entries of the orders MySQL honoured: JSON
/// payloads and separate idempotency and released hashes before v5; with the `compact` ledger
/// (v5), compact entries under the orders' 16-byte ids that carry their key and release mark.
pub(super) fn rebuilt_state(placed: &[orders::OrderRow], compact: bool) -> Rebuilt {
    let mut ledger = Vec::with_capacity(placed.len());
    let mut units: BTreeMap<&str, u64> = BTreeMap::new();
    let mut idem = Vec::new();
    let mut released = Vec::new();
    for o in placed {
        let holds = orders::holds_units(&o.status);
        if holds {
            *units.entry(o.user_id.as_str()).or_insert(0) += u64::from(o.quantity);
        }
        if compact {
            let entry = CompactEntry {
                quantity: o.quantity,
                reserved_at_ms: o.reserved_at.timestamp_millis(),
                idempotency_key: o.idempotency_key.clone(),
                user_id: o.user_id.clone(),
                released: !holds,
            };
            ledger.push((o.order_id.as_bytes().to_vec(), entry.encode().into_bytes()));
            continue;
        }
        let event = OrderReserved::new(
            o.order_id,
            o.sale_id,
            o.item_id,
            &o.user_id,
            o.quantity,
            o.price_cents,
            o.reserved_at.timestamp_millis(),
        )
        .with_idempotency_key(o.idempotency_key.as_deref());
        ledger.push((o.order_id.to_string().into_bytes(), event.to_bytes()));
        if !holds {
            released.push((
                o.order_id.to_string().into_bytes(),
                o.quantity.to_string().into_bytes(),
            ));
        }
        if let Some(key) = &o.idempotency_key {
            idem.push((
                format!("{}\0{key}", o.user_id).into_bytes(),
                format!("{} {}", o.order_id, o.quantity).into_bytes(),
            ));
        }
    }
    let buyers = units
        .into_iter()
        .map(|(user, n)| (user.as_bytes().to_vec(), n.to_string().into_bytes()))
        .collect();
    Rebuilt {
        ledger,
        buyers,
        idem,
        released,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn order(user: &str, qty: u32, key: Option<&str>) -> orders::OrderRow {
        orders::OrderRow {
            order_id: Uuid::now_v7(),
            sale_id: 1,
            item_id: 2,
            user_id: user.into(),
            idempotency_key: key.map(Into::into),
            quantity: qty,
            price_cents: 100,
            status: orders::STATUS_PENDING.into(),
            reject_reason: None,
            reserved_at: Utc::now(),
            persisted_at: Utc::now(),
            expires_at: None,
            paid_at: None,
            payment_ref: None,
            paid_cents: None,
            closed_at: None,
            released_at: None,
        }
    }

    #[test]
    fn the_rebuilt_state_holds_every_order_the_units_held_the_keys_and_what_was_released() {
        let mut placed = [
            order("a", 1, Some("k1")),
            order("a", 2, None),
            order("b", 1, None),
            order("c", 2, None),
        ];
        placed[3].status = orders::STATUS_EXPIRED.into();
        let Rebuilt {
            ledger,
            buyers,
            idem,
            released,
        } = rebuilt_state(&placed, false);
        assert_eq!(ledger.len(), 4, "closed orders stay in the ledger");
        assert_eq!(
            released,
            [(placed[3].order_id.to_string().into_bytes(), b"2".to_vec())],
            "and are recorded as released"
        );
        let first = OrderReserved::parse(&ledger[0].1).unwrap();
        assert_eq!(first.order_id, placed[0].order_id);
        assert_eq!(first.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(
            buyers,
            [
                (b"a".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"1".to_vec())
            ]
        );
        assert_eq!(idem.len(), 1);
        assert_eq!(idem[0].0, b"a\0k1");
        assert_eq!(idem[0].1, format!("{} 1", placed[0].order_id).into_bytes());

        // The compact ledger (v5): entries under 16-byte ids carry the key and the release
        // mark; there is no idempotency or released hash.
        let compact = rebuilt_state(&placed, true);
        assert!(compact.idem.is_empty() && compact.released.is_empty());
        assert_eq!(compact.buyers, buyers);
        assert_eq!(compact.ledger.len(), 4);
        assert_eq!(compact.ledger[0].0, placed[0].order_id.as_bytes());
        let first = CompactEntry::decode(&compact.ledger[0].1).unwrap();
        assert_eq!(
            (
                first.quantity,
                first.idempotency_key.as_deref(),
                first.released
            ),
            (1, Some("k1"), false)
        );
        let expired = CompactEntry::decode(&compact.ledger[3].1).unwrap();
        assert_eq!((expired.quantity, expired.released), (2, true));
    }
}
