//! Reading an item's ledger whatever its layout: the JSON payloads of v1–v4 in one hash, or the
//! compact, bucketed entries of v5 (see [`super::compact`]), from which the Kafka payload is
//! rebuilt with the item's meta. Every reader of the ledger outside the scripts goes through
//! here, so the layout is decided in one place, by what meta holds.

use redis::AsyncCommands;
use uuid::Uuid;

use super::compact::{self, CompactEntry};
use crate::{
    domain::order_reserved::OrderReserved,
    stores::redis::{RedisConn, keys::ItemKeys},
};

/// How an item's ledger is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One hash, text order id -> JSON payload (v1–v4).
    Payloads,
    /// Buckets of compact entries (v5).
    Compact {
        /// Buckets of the ledger and the buyers.
        buckets: u32,
        /// The item's price, which rebuilt payloads carry.
        price_cents: u64,
    },
}

/// One item's ledger.
#[derive(Debug, Clone)]
pub struct ItemLedger {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// The item's keys.
    pub keys: ItemKeys,
    /// Its layout.
    pub layout: Layout,
}

impl ItemLedger {
    /// The ledger of an item, its layout read from meta (a missing meta reads as
    /// [`Layout::Payloads`], whose lookups then find nothing).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn open(
        conn: &mut RedisConn,
        keys: ItemKeys,
        sale_id: u64,
        item_id: u64,
    ) -> redis::RedisResult<Self> {
        let (buckets, price): (Option<u32>, Option<u64>) = redis::cmd("HMGET")
            .arg(&keys.meta)
            .arg("buckets")
            .arg("price_cents")
            .query_async(conn)
            .await?;
        let layout = match buckets {
            Some(buckets) if buckets > 0 => Layout::Compact {
                buckets,
                price_cents: price.unwrap_or(0),
            },
            _ => Layout::Payloads,
        };
        Ok(Self {
            sale_id,
            item_id,
            keys,
            layout,
        })
    }

    /// True for the compact layout.
    pub fn is_compact(&self) -> bool {
        matches!(self.layout, Layout::Compact { .. })
    }

    /// Every key the ledger lives in.
    pub fn ledger_keys(&self) -> Vec<String> {
        self.bucketed(&self.keys.ledger)
    }

    /// Every key the buyers' units live in (the ledger's buckets, in the compact layout).
    pub fn buyer_keys(&self) -> Vec<String> {
        match self.layout {
            Layout::Payloads => vec![self.keys.buyers.clone()],
            Layout::Compact { .. } => self.ledger_keys(),
        }
    }

    fn bucketed(&self, base: &str) -> Vec<String> {
        match self.layout {
            Layout::Payloads => vec![base.to_string()],
            Layout::Compact { buckets, .. } => {
                (0..buckets).map(|n| compact::bucket_key(base, n)).collect()
            }
        }
    }

    /// The key and field an order's entry is under.
    pub fn locate(&self, order_id: &Uuid) -> (String, Vec<u8>) {
        match self.layout {
            Layout::Payloads => (self.keys.ledger.clone(), order_id.to_string().into_bytes()),
            Layout::Compact { buckets, .. } => (
                compact::bucket_key(&self.keys.ledger, compact::order_bucket(order_id, buckets)),
                order_id.as_bytes().to_vec(),
            ),
        }
    }

    /// The key a buyer's units are under.
    pub fn buyer_key(&self, user: &str) -> String {
        match self.layout {
            Layout::Payloads => self.keys.buyers.clone(),
            Layout::Compact { buckets, .. } => {
                compact::bucket_key(&self.keys.ledger, compact::user_bucket(user, buckets))
            }
        }
    }

    /// The field a buyer's units are under, in [`ItemLedger::buyer_key`].
    pub fn buyer_field(&self, user: &str) -> Vec<u8> {
        match self.layout {
            Layout::Payloads => user.as_bytes().to_vec(),
            Layout::Compact { .. } => compact::user_field(user),
        }
    }

    /// The raw entries of `ids` (payload or compact entry), `None` where there is none.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn raw(
        &self,
        conn: &mut RedisConn,
        ids: &[Uuid],
    ) -> redis::RedisResult<Vec<Option<Vec<u8>>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            let (key, field) = self.locate(id);
            pipe.hget(key, field);
        }
        pipe.query_async(conn).await
    }

    /// True when the ledger holds `order_id`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn contains(
        &self,
        conn: &mut RedisConn,
        order_id: &Uuid,
    ) -> redis::RedisResult<bool> {
        let (key, field) = self.locate(order_id);
        conn.hexists(key, field).await
    }

    /// The reservation event of a raw entry of `order_id`; `None` when it does not parse (or
    /// names another order).
    pub fn event(&self, order_id: Uuid, raw: &[u8]) -> Option<OrderReserved> {
        match self.layout {
            Layout::Payloads => OrderReserved::parse(raw)
                .ok()
                .filter(|e| e.order_id == order_id),
            Layout::Compact { price_cents, .. } => {
                let e = CompactEntry::decode(raw)?;
                Some(
                    OrderReserved::new(
                        order_id,
                        self.sale_id,
                        self.item_id,
                        &e.user_id,
                        e.quantity,
                        price_cents,
                        e.reserved_at_ms,
                    )
                    .with_idempotency_key(e.idempotency_key.as_deref()),
                )
            }
        }
    }

    /// The Kafka payloads of `ids` (stored, or rebuilt from compact entries), `None` where the
    /// ledger holds none or it does not parse.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn payloads(
        &self,
        conn: &mut RedisConn,
        ids: &[Uuid],
    ) -> redis::RedisResult<Vec<Option<Vec<u8>>>> {
        let raw = self.raw(conn, ids).await?;
        Ok(ids
            .iter()
            .zip(raw)
            .map(|(id, raw)| match (self.layout, raw) {
                (_, None) => None,
                (Layout::Payloads, Some(payload)) => Some(payload),
                (Layout::Compact { .. }, Some(raw)) => self.event(*id, &raw).map(|e| e.to_bytes()),
            })
            .collect())
    }
}

impl ItemLedger {
    /// Every entry as a reservation event, by order id (entries that do not parse are left
    /// out). Reads the whole ledger at once: for tools and tests; reconciliation reads in paced
    /// pages instead.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn all_events(
        &self,
        conn: &mut RedisConn,
    ) -> redis::RedisResult<std::collections::BTreeMap<Uuid, OrderReserved>> {
        let mut out = std::collections::BTreeMap::new();
        for (field, raw) in every_field(conn, self.ledger_keys()).await? {
            if let Some(id) = self.order_of_field(&field)
                && let Some(event) = self.event(id, &raw)
            {
                out.insert(id, event);
            }
        }
        Ok(out)
    }

    /// Every buyer's units (for tools and tests, as [`ItemLedger::all_events`]).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn all_buyers(
        &self,
        conn: &mut RedisConn,
    ) -> redis::RedisResult<std::collections::BTreeMap<String, i64>> {
        let mut out = std::collections::BTreeMap::new();
        for (field, units) in every_field(conn, self.buyer_keys()).await? {
            let user = match self.layout {
                Layout::Payloads => Some(String::from_utf8_lossy(&field).into_owned()),
                Layout::Compact { .. } => compact::user_of_field(&field),
            };
            if let Some(user) = user {
                let units = std::str::from_utf8(&units)
                    .ok()
                    .and_then(|u| u.parse().ok());
                out.insert(user, units.unwrap_or(i64::MIN));
            }
        }
        Ok(out)
    }

    /// The order a ledger field names: its text before v5, its 16 bytes from v5 (a bucket's
    /// other fields are buyers).
    pub fn order_of_field(&self, field: &[u8]) -> Option<Uuid> {
        match self.layout {
            Layout::Payloads => Uuid::try_parse_ascii(field).ok(),
            Layout::Compact { .. } => (field.len() == 16)
                .then(|| Uuid::from_slice(field).ok())
                .flatten(),
        }
    }
}

/// The order id of an outbox member or ledger field: the text of a UUID (v1–v4) or its 16
/// bytes (v5).
pub fn parse_order_id(raw: &[u8]) -> Option<Uuid> {
    if raw.len() == 16 {
        return Uuid::from_slice(raw).ok();
    }
    Uuid::try_parse_ascii(raw).ok()
}

/// A field as text for logs and reports: the UUID when it is one, else its bytes escaped.
pub(crate) fn field_text(raw: &[u8]) -> String {
    parse_order_id(raw).map_or_else(
        || String::from_utf8_lossy(raw).into_owned(),
        |id| id.to_string(),
    )
}

/// Every field and value of the hashes `keys`, one HGETALL each.
async fn every_field(
    conn: &mut RedisConn,
    keys: impl IntoIterator<Item = String>,
) -> redis::RedisResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut all = Vec::new();
    for key in keys {
        let page: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await?;
        all.extend(page);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_parse_from_text_and_bytes() {
        let id = Uuid::now_v7();
        assert_eq!(parse_order_id(id.as_bytes()), Some(id));
        assert_eq!(parse_order_id(id.to_string().as_bytes()), Some(id));
        assert_eq!(parse_order_id(b"nope"), None);
        assert_eq!(field_text(id.as_bytes()), id.to_string());
        assert_eq!(field_text(b"nope"), "nope");
    }

    #[test]
    fn a_compact_entry_rebuilds_the_event_with_the_items_meta() {
        let ledger = ItemLedger {
            sale_id: 3,
            item_id: 4,
            keys: crate::stores::redis::keys::Keys::new("t:").item(3, 4),
            layout: Layout::Compact {
                buckets: 7,
                price_cents: 990,
            },
        };
        let id = Uuid::now_v7();
        let (key, field) = ledger.locate(&id);
        assert_eq!(field, id.as_bytes());
        assert_eq!(
            key,
            format!("t:sk:{{s3:i4}}:ledger:{}", compact::order_bucket(&id, 7))
        );
        let e = ledger.event(id, b"2 miglcddn k1 bob").unwrap();
        let want = OrderReserved::new(id, 3, 4, "bob", 2, 990, 1_764_197_000_123)
            .with_idempotency_key(Some("k1"));
        assert_eq!(e, want);
        assert!(ledger.event(id, b"garbage").is_none());
    }
}
