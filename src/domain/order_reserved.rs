//! The `OrderReserved` event: what the buy path stores in the Redis ledger and sends to Kafka.
//! Versioned by `schema`, so a consumer can tell an old message from a new one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::identity::{MAX_IDEMPOTENCY_KEY_LEN, MAX_USER_ID_LEN};

/// Schema version this build writes: 2 added `idempotency_key`. Version 1 is still read.
pub(crate) const ORDER_RESERVED_SCHEMA: u32 = 2;

/// Schema versions this build reads.
const READABLE_SCHEMAS: [u32; 2] = [1, 2];

/// 9999-12-31T23:59:59.999Z, the last instant a MySQL DATETIME holds.
const LATEST_RESERVED_AT_MS: i64 = 253_402_300_799_999;

/// The event type tag.
pub(crate) const ORDER_RESERVED_TYPE: &str = "order_reserved";

/// A reservation confirmed by Redis, on its way to MySQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReserved {
    /// Schema version ([`ORDER_RESERVED_SCHEMA`]).
    pub schema: u32,
    /// Always [`ORDER_RESERVED_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// UUIDv7 order id; the primary key that makes redelivery harmless.
    pub order_id: Uuid,
    /// Sale id.
    pub sale_id: u64,
    /// Item id (also the message key, so one item's orders stay in order on one partition).
    pub item_id: u64,
    /// The buyer.
    pub user_id: String,
    /// Units reserved.
    pub quantity: u32,
    /// Price per unit quoted at reservation time, in cents.
    pub price_cents: u64,
    /// Reservation time, Unix milliseconds.
    pub reserved_at_ms: i64,
    /// The buyer's `Idempotency-Key`, stored with the order so that a rebuild of Redis from
    /// MySQL still answers retries (schema 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Why a message can never become an order (it goes to the dead-letter topic).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON of the expected shape.
    #[error("not an order event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A schema or type this build does not understand.
    #[error("unsupported event {kind} schema {schema}")]
    Unsupported {
        /// The type tag found.
        kind: String,
        /// The schema found.
        schema: u32,
    },
    /// Well-formed but impossible values.
    #[error("invalid order event: {0}")]
    Invalid(&'static str),
}

impl OrderReserved {
    /// A new event of the current schema.
    pub fn new(
        order_id: Uuid,
        sale_id: u64,
        item_id: u64,
        user_id: &str,
        quantity: u32,
        price_cents: u64,
        reserved_at_ms: i64,
    ) -> Self {
        Self {
            schema: ORDER_RESERVED_SCHEMA,
            kind: ORDER_RESERVED_TYPE.to_string(),
            order_id,
            sale_id,
            item_id,
            user_id: user_id.to_string(),
            quantity,
            price_cents,
            reserved_at_ms,
            idempotency_key: None,
        }
    }

    /// The same event carrying the buyer's idempotency key.
    pub fn with_idempotency_key(mut self, key: Option<&str>) -> Self {
        self.idempotency_key = key.map(str::to_string);
        self
    }

    /// The JSON bytes stored in the ledger and sent to Kafka.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serialises")
    }

    /// Parses and checks an event.
    ///
    /// # Errors
    /// The bytes are not a valid event of a schema this build understands.
    pub fn parse(bytes: &[u8]) -> Result<Self, EventError> {
        let event: OrderReserved = serde_json::from_slice(bytes)?;
        if event.kind != ORDER_RESERVED_TYPE || !READABLE_SCHEMAS.contains(&event.schema) {
            return Err(EventError::Unsupported {
                kind: event.kind,
                schema: event.schema,
            });
        }
        if event.quantity == 0 {
            return Err(EventError::Invalid("quantity is 0"));
        }
        if event.user_id.is_empty() || event.user_id.len() > MAX_USER_ID_LEN {
            return Err(EventError::Invalid("user id is empty or too long"));
        }
        if event
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN)
        {
            return Err(EventError::Invalid("idempotency key is empty or too long"));
        }
        // MySQL DATETIME ends with the year 9999; a time beyond it could never be stored and
        // would stall the partition if it were not turned away here.
        if !(0..=LATEST_RESERVED_AT_MS).contains(&event.reserved_at_ms) {
            return Err(EventError::Invalid("reserved_at_ms is outside 1970..9999"));
        }
        Ok(event)
    }

    /// The message key: the item id, so one item's orders keep their order on one partition.
    pub fn key(&self) -> String {
        self.item_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips() {
        let e = OrderReserved::new(Uuid::now_v7(), 1, 2, "u", 1, 500, 1_700_000_000_000);
        assert_eq!(OrderReserved::parse(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn an_idempotency_key_travels_with_the_event_and_schema_1_is_still_read() {
        let e = OrderReserved::new(Uuid::now_v7(), 1, 2, "u", 1, 500, 1_700_000_000_000)
            .with_idempotency_key(Some("k-1"));
        let back = OrderReserved::parse(&e.to_bytes()).unwrap();
        assert_eq!(back.idempotency_key.as_deref(), Some("k-1"));
        let v1 = br#"{"schema":1,"type":"order_reserved","order_id":"0190a5f4-0000-7000-8000-000000000001","sale_id":1,"item_id":2,"user_id":"u","quantity":1,"price_cents":5,"reserved_at_ms":1}"#;
        assert_eq!(OrderReserved::parse(v1).unwrap().idempotency_key, None);
        let plain = OrderReserved::new(Uuid::now_v7(), 1, 2, "u", 1, 500, 0);
        assert!(
            !String::from_utf8(plain.to_bytes())
                .unwrap()
                .contains("idempotency_key")
        );
    }

    #[test]
    fn poison_messages_are_told_apart() {
        assert!(matches!(
            OrderReserved::parse(b"not json"),
            Err(EventError::Malformed(_))
        ));
        let mut e = OrderReserved::new(Uuid::now_v7(), 1, 2, "u", 1, 500, 0);
        e.schema = 99;
        assert!(matches!(
            OrderReserved::parse(&e.to_bytes()),
            Err(EventError::Unsupported { .. })
        ));
        e.schema = ORDER_RESERVED_SCHEMA;
        e.quantity = 0;
        assert!(matches!(
            OrderReserved::parse(&e.to_bytes()),
            Err(EventError::Invalid(_))
        ));
        e.quantity = 1;
        e.reserved_at_ms = 300_000_000_000_000;
        assert!(matches!(
            OrderReserved::parse(&e.to_bytes()),
            Err(EventError::Invalid(_))
        ));
    }
}
