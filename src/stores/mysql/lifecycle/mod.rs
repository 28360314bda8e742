//! Queries of the order lifecycle: pay, cancel and expire under row locks, the release
//! bookkeeping, the buyer's order list, and the lifecycle events outbox.
//!
//! Invariant: exactly one of pay, cancel and expire moves a `pending_payment` order, under the
//! order's row lock; cancel and expire give the units back to `sale_items.stock` in the same
//! transaction, under the item's row lock, and write their event there too. Locks are taken
//! items first, then orders (as the consumer takes items before it inserts orders), so the
//! lifecycle and the consumer never wait on each other in a circle. Paying takes the item too:
//! an order whose window has passed is expired by the payment that came too late.

mod events;
mod release;

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use super::orders::{
    ORDER_COLUMNS, OrderRow, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_PAID, STATUS_PENDING,
};

pub use events::{LifecycleEvent, PendingEvent, mark_sent, unsent_events};
pub use release::{Unreleased, expire_due, mark_released, unreleased, unreleased_of};

use events::insert_event;

/// What a state change found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// This call changed the order; here it is afterwards.
    Done(OrderRow),
    /// The order was already in the asked state (a repeated call): here it is, unchanged.
    Same(OrderRow),
    /// The order is in a state the asked change cannot leave; here it is, unchanged.
    Refused(OrderRow),
    /// The order was due when paid: this call expired it (its units went back).
    ExpiredInstead(OrderRow),
    /// No such order (or not the caller's).
    Missing,
    /// Its sale's script version cannot give units back (before v4): nothing changed.
    Unsupported,
}

/// `t` to the millisecond, as `DATETIME(3)` stores it: an answer built before the row is read
/// again must show what a later read shows.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Locks the order's item row, then the order (the lock order of the module docs).
async fn lock_item_then_order(
    tx: &mut Transaction<'_, MySql>,
    item: u64,
    order_id: Uuid,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query("SELECT id FROM sale_items WHERE id = ? FOR UPDATE")
        .bind(item)
        .execute(&mut **tx)
        .await?;
    lock_order(tx, order_id).await
}

async fn lock_order(
    tx: &mut Transaction<'_, MySql>,
    order_id: Uuid,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ? FOR UPDATE"
    )))
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Closes `order` as `status` (`cancelled` or `expired`) inside `tx`: its row, its units back to
/// the item's stock, its event. The item row must be locked already.
async fn close(
    tx: &mut Transaction<'_, MySql>,
    order: &mut OrderRow,
    status: &'static str,
    kind: &'static str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET status = ?, closed_at = ? WHERE order_id = ?")
        .bind(status)
        .bind(now)
        .bind(order.order_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE sale_items SET stock = stock + ?, version = version + 1 WHERE id = ?")
        .bind(order.quantity)
        .bind(order.item_id)
        .execute(&mut **tx)
        .await?;
    order.status = status.to_string();
    order.closed_at = Some(now);
    insert_event(tx, &[LifecycleEvent::of(order, kind, now)]).await
}

/// Pays `order_id` for `amount_cents` with the provider's `payment_ref`: `Done` when paid now,
/// `Same` for a repeat of the same payment, `Refused` when it is paid by another payment,
/// closed or rejected, `ExpiredInstead` when its window had passed (it is expired now).
/// `Ok(Err(expected))` when the amount is not the order's total (nothing written).
///
/// # Errors
/// The database failed; nothing is written.
pub async fn pay(
    pool: &MySqlPool,
    order_id: Uuid,
    amount_cents: u64,
    payment_ref: &str,
    now: DateTime<Utc>,
) -> Result<Result<Transition, u64>, sqlx::Error> {
    let now = millis(now);
    // The item first (see the module docs), only if the order may have to expire here.
    let item: Option<u64> = sqlx::query_scalar("SELECT item_id FROM orders WHERE order_id = ?")
        .bind(order_id)
        .fetch_optional(pool)
        .await?;
    let Some(item) = item else {
        return Ok(Ok(Transition::Missing));
    };
    let mut tx = pool.begin().await?;
    let Some(mut order) = lock_item_then_order(&mut tx, item, order_id).await? else {
        return Ok(Ok(Transition::Missing));
    };
    let total = u64::from(order.quantity) * order.price_cents;
    let outcome = match order.status.as_str() {
        STATUS_PAID if order.payment_ref.as_deref() == Some(payment_ref) => Transition::Same(order),
        STATUS_PENDING if order.expires_at.is_some_and(|t| t <= now) => {
            close(&mut tx, &mut order, STATUS_EXPIRED, "order_expired", now).await?;
            tx.commit().await?;
            return Ok(Ok(Transition::ExpiredInstead(order)));
        }
        STATUS_PENDING if amount_cents != total => return Ok(Err(total)),
        STATUS_PENDING => {
            sqlx::query(
                "UPDATE orders SET status = ?, paid_at = ?, payment_ref = ?, paid_cents = ? \
                 WHERE order_id = ?",
            )
            .bind(STATUS_PAID)
            .bind(now)
            .bind(payment_ref)
            .bind(amount_cents)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
            order.status = STATUS_PAID.to_string();
            order.paid_at = Some(now);
            order.payment_ref = Some(payment_ref.to_string());
            order.paid_cents = Some(amount_cents);
            let mut event = LifecycleEvent::of(&order, "order_paid", now);
            event.amount_cents = Some(amount_cents);
            event.payment_ref = Some(payment_ref.to_string());
            insert_event(&mut tx, &[event]).await?;
            Transition::Done(order)
        }
        _ => Transition::Refused(order),
    };
    tx.commit().await?;
    Ok(Ok(outcome))
}

/// Cancels `order_id` for its buyer `user_id`: `Done` when cancelled now (its units went back
/// to MySQL's stock), `Same` when it was cancelled before, `Refused` when it is paid, expired or
/// rejected, `Missing` when unknown or someone else's, `Unsupported` for an order without a
/// payment window (of a sale from before windows existed: it never expires either).
///
/// # Errors
/// The database failed; nothing is written.
pub async fn cancel(
    pool: &MySqlPool,
    order_id: Uuid,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Transition, sqlx::Error> {
    let now = millis(now);
    let item: Option<(u64, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT item_id, user_id, status, expires_at FROM orders WHERE order_id = ?",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await?;
    let Some((item, owner, status, expires_at)) = item else {
        return Ok(Transition::Missing);
    };
    if owner != user_id {
        return Ok(Transition::Missing);
    }
    if status == STATUS_PENDING && expires_at.is_none() {
        return Ok(Transition::Unsupported);
    }
    let mut tx = pool.begin().await?;
    let Some(mut order) = lock_item_then_order(&mut tx, item, order_id).await? else {
        return Ok(Transition::Missing);
    };
    let outcome = match order.status.as_str() {
        STATUS_CANCELLED => Transition::Same(order),
        STATUS_PENDING => {
            close(
                &mut tx,
                &mut order,
                STATUS_CANCELLED,
                "order_cancelled",
                now,
            )
            .await?;
            Transition::Done(order)
        }
        _ => Transition::Refused(order),
    };
    tx.commit().await?;
    Ok(outcome)
}

/// One page of a buyer's orders, newest first, after `before` (exclusive) when given.
///
/// # Errors
/// The database failed.
pub(crate) async fn list_for_user(
    pool: &MySqlPool,
    user_id: &str,
    sale_id: Option<u64>,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = "
    ));
    q.push_bind(user_id);
    if let Some(sale) = sale_id {
        q.push(" AND sale_id = ").push_bind(sale);
    }
    if let Some(status) = status {
        q.push(" AND status = ").push_bind(status);
    }
    if let Some(before) = before {
        q.push(" AND order_id < ").push_bind(before);
    }
    q.push(" ORDER BY order_id DESC LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(pool).await
}
