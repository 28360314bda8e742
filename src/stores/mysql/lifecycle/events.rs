//! The lifecycle events outbox: each event written in the transaction of the change it reports,
//! then read back by the sender and marked once Kafka has it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::stores::mysql::orders::OrderRow;

/// A lifecycle event, as stored in `order_events` and sent to Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleEvent {
    /// Schema version of the payload.
    pub schema: u32,
    /// `order_paid`, `order_cancelled` or `order_expired`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The order.
    pub order_id: Uuid,
    /// Its sale.
    pub sale_id: u64,
    /// Its item.
    pub item_id: u64,
    /// Its buyer.
    pub user_id: String,
    /// Units.
    pub quantity: u32,
    /// Cents paid (paid events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<u64>,
    /// The payment provider's reference (paid events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_ref: Option<String>,
    /// When it happened, Unix ms.
    pub at_ms: i64,
}

impl LifecycleEvent {
    pub(super) fn of(order: &OrderRow, kind: &'static str, at: DateTime<Utc>) -> Self {
        Self {
            schema: 1,
            kind,
            order_id: order.order_id,
            sale_id: order.sale_id,
            item_id: order.item_id,
            user_id: order.user_id.clone(),
            quantity: order.quantity,
            amount_cents: None,
            payment_ref: None,
            at_ms: at.timestamp_millis(),
        }
    }
}

pub(super) async fn insert_event(
    tx: &mut Transaction<'_, MySql>,
    events: &[LifecycleEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut q =
        QueryBuilder::<MySql>::new("INSERT INTO order_events (order_id, item_id, kind, payload) ");
    q.push_values(events, |mut b, e| {
        b.push_bind(e.order_id)
            .push_bind(e.item_id)
            .push_bind(e.kind)
            .push_bind(serde_json::to_string(e).expect("an event serialises"));
    });
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// An event waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingEvent {
    /// Its row.
    pub id: u64,
    /// Its item (the message key).
    pub item_id: u64,
    /// Its JSON.
    pub payload: String,
}

/// Up to `limit` unsent events, oldest first.
///
/// # Errors
/// The database failed.
pub async fn unsent_events(pool: &MySqlPool, limit: u32) -> Result<Vec<PendingEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, item_id, payload FROM order_events WHERE sent_at IS NULL ORDER BY id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Records events as sent.
///
/// # Errors
/// The database failed.
pub async fn mark_sent(pool: &MySqlPool, ids: &[u64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "UPDATE order_events SET sent_at = CURRENT_TIMESTAMP(3) WHERE id IN (",
    );
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(")");
    q.build().execute(pool).await?;
    Ok(())
}
