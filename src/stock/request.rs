//! What a reservation asks the deduct script for.

use uuid::Uuid;

use super::item::buyer_holder;
use crate::stores::redis::keys::Holder;

/// One reservation request.
#[derive(Debug, Clone)]
pub struct DeductRequest<'a> {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Script version of the sale.
    pub script_version: &'a str,
    /// The sale's identity (checked against the item's state from v3 on).
    pub sale_uid: &'a str,
    /// The buyer.
    pub user_id: &'a str,
    /// Units asked for.
    pub quantity: u32,
    /// Id the new order gets if reserved.
    pub order_id: Uuid,
    /// Reservation payload stored in the ledger (the Kafka message) before v5.
    pub payload: &'a [u8],
    /// Reservation time, Unix ms (the compact ledger stores it in place of the payload).
    pub reserved_at_ms: i64,
    /// Client's idempotency key, if any.
    pub idempotency_key: Option<&'a str>,
    /// The item's stock shards (1: one key).
    pub shards: u16,
}

impl DeductRequest<'_> {
    /// Where the request's stock lives: the item, or the buyer's home shard.
    pub fn holder(&self) -> Holder {
        buyer_holder(self.user_id, self.shards)
    }
}

/// A [`DeductRequest`] for an item of the catalog.
pub fn stock_request<'a>(
    meta: &'a crate::stores::mysql::sales::ItemMeta,
    user_id: &'a str,
    quantity: u32,
    order_id: Uuid,
    payload: &'a [u8],
    reserved_at_ms: i64,
    idempotency_key: Option<&'a str>,
) -> DeductRequest<'a> {
    DeductRequest {
        sale_id: meta.sale_id,
        item_id: meta.item_id,
        script_version: &meta.script_version,
        sale_uid: &meta.sale_uid,
        user_id,
        quantity,
        order_id,
        payload,
        reserved_at_ms,
        idempotency_key,
        shards: meta.shards,
    }
}
