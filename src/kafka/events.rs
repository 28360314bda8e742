//! The `OrderReserved` event: what the buy path stores in the Redis ledger and sends to Kafka.
//! Versioned by `schema`, so a consumer can tell an old message from a new one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::identity::MAX_USER_ID_LEN;

/// Schema version this build writes.
pub const ORDER_RESERVED_SCHEMA: u32 = 1;

/// 9999-12-31T23:59:59.999Z, the last instant a MySQL DATETIME holds.
const LATEST_RESERVED_AT_MS: i64 = 253_402_300_799_999;

/// The event type tag.
pub const ORDER_RESERVED_TYPE: &str = "order_reserved";

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
        }
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
        if event.kind != ORDER_RESERVED_TYPE || event.schema != ORDER_RESERVED_SCHEMA {
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
