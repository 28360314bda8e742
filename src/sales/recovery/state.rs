//! An item's Redis state as its orders in MySQL describe it: the ledger and buyers a rebuild
//! writes back.

use std::collections::BTreeMap;

use crate::{
    stock::{compact::CompactEntry, records},
    stores::mysql::orders,
};

/// Field/value pairs of one hash.
pub(super) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// An item's state rebuilt from its orders.
pub(super) struct Rebuilt {
    pub(super) ledger: Pairs,
    pub(super) buyers: Pairs,
}

/// How the rebuilt ledger is laid out (the script version's, see `stock::compact` and
/// `stock::records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// v5: an entry under each order's 16-byte id, and each buyer's units.
    Buckets,
    /// v6: each buyer hash with the records of its orders; the units follow from them.
    Records,
}

/// The ledger and buyers of the orders MySQL honoured: each order's compact entry, which
/// carries its key and release mark, in the `form` of the sale's script version.
pub(super) fn rebuilt_state(placed: &[orders::OrderRow], form: Form) -> Rebuilt {
    let mut ledger = Vec::with_capacity(placed.len());
    let mut by_field: BTreeMap<[u8; 4], Vec<(uuid::Uuid, CompactEntry)>> = BTreeMap::new();
    let mut units: BTreeMap<&str, u64> = BTreeMap::new();
    for o in placed {
        let holds = orders::holds_units(&o.status);
        if holds {
            *units.entry(o.user_id.as_str()).or_insert(0) += u64::from(o.quantity);
        }
        let entry = CompactEntry {
            quantity: o.quantity,
            reserved_at_ms: o.reserved_at.timestamp_millis(),
            idempotency_key: o.idempotency_key.clone(),
            user_id: o.user_id.clone(),
            released: !holds,
        };
        match form {
            Form::Buckets => {
                ledger.push((o.order_id.as_bytes().to_vec(), entry.encode().into_bytes()));
            }
            Form::Records => by_field
                .entry(records::order_field(&o.order_id))
                .or_default()
                .push((o.order_id, entry)),
        }
    }
    if form == Form::Records {
        return Rebuilt {
            ledger: by_field
                .into_iter()
                .map(|(field, orders)| {
                    let value = records::field_value(orders.iter().map(|(id, e)| (id, e)));
                    (field.to_vec(), value)
                })
                .collect(),
            buyers: Vec::new(),
        };
    }
    let buyers = units
        .into_iter()
        .map(|(user, n)| (user.as_bytes().to_vec(), n.to_string().into_bytes()))
        .collect();
    Rebuilt { ledger, buyers }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn order(user: &str, qty: u32, key: Option<&str>) -> orders::OrderRow {
        orders::OrderRow {
            order_id: crate::stock::compact::in_buyers_bucket(Uuid::now_v7(), user),
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

    fn placed() -> [orders::OrderRow; 4] {
        let mut placed = [
            order("a", 1, Some("k1")),
            order("a", 2, None),
            order("b", 1, None),
            order("c", 2, None),
        ];
        placed[3].status = orders::STATUS_EXPIRED.into();
        placed
    }

    #[test]
    fn buckets_hold_every_order_with_its_key_and_release_mark_and_the_units_held() {
        let placed = placed();
        let Rebuilt { ledger, buyers } = rebuilt_state(&placed, Form::Buckets);
        assert_eq!(
            buyers,
            [
                (b"a".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"1".to_vec())
            ]
        );
        assert_eq!(ledger.len(), 4, "closed orders stay in the ledger");
        assert_eq!(ledger[0].0, placed[0].order_id.as_bytes());
        let first = CompactEntry::decode(&ledger[0].1).unwrap();
        assert_eq!(
            (
                first.quantity,
                first.idempotency_key.as_deref(),
                first.released
            ),
            (1, Some("k1"), false)
        );
        let expired = CompactEntry::decode(&ledger[3].1).unwrap();
        assert_eq!((expired.quantity, expired.released), (2, true));
    }

    #[test]
    fn records_group_each_buyers_orders_under_their_hash() {
        let placed = placed();
        let Rebuilt { ledger, buyers } = rebuilt_state(&placed, Form::Records);
        assert!(buyers.is_empty(), "v6 counts units from the records");
        assert_eq!(ledger.len(), 3, "one field per buyer hash");
        let a = ledger
            .iter()
            .find(|(f, _)| f.as_slice() == records::user_field("a"))
            .unwrap();
        let read: Vec<_> = records::records(&a.1)
            .map(|(id, raw)| (id, CompactEntry::decode(raw).unwrap().quantity))
            .collect();
        assert_eq!(
            read,
            [(placed[0].order_id, 1), (placed[1].order_id, 2)],
            "a's two orders, in order"
        );
        let c = ledger
            .iter()
            .find(|(f, _)| f.as_slice() == records::user_field("c"))
            .unwrap();
        let (_, raw) = records::records(&c.1).next().unwrap();
        assert!(CompactEntry::decode(raw).unwrap().released);
    }
}
