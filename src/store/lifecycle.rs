//! Queries of the order lifecycle: pay, cancel and expire under row locks, the release
//! bookkeeping, the buyer's order list, and the lifecycle events outbox.
//!
//! Invariant: exactly one of pay, cancel and expire moves a `pending_payment` order, under the
//! order's row lock; cancel and expire give the units back to `sale_items.stock` in the same
//! transaction, under the item's row lock, and write their event there too. Locks are taken
//! items first, then orders (as the consumer takes items before it inserts orders), so the
//! lifecycle and the consumer never wait on each other in a circle. Paying takes the item too:
//! an order whose window has passed is expired by the payment that came too late.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use super::orders::{
    ORDER_COLUMNS, OrderRow, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_PAID, STATUS_PENDING,
};

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
    fn of(order: &OrderRow, kind: &'static str, at: DateTime<Utc>) -> Self {
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

async fn insert_event(
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
    sqlx::query("SELECT id FROM sale_items WHERE id = ? FOR UPDATE")
        .bind(item)
        .execute(&mut *tx)
        .await?;
    let Some(mut order) = lock_order(&mut tx, order_id).await? else {
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
/// rejected, `Missing` when unknown or someone else's, `Unsupported` for a sale before v4.
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
    let item: Option<(u64, String, String)> = sqlx::query_as(
        "SELECT o.item_id, o.user_id, s.script_version FROM orders o \
         JOIN sales s ON s.id = o.sale_id WHERE o.order_id = ?",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await?;
    let Some((item, owner, version)) = item else {
        return Ok(Transition::Missing);
    };
    if owner != user_id {
        return Ok(Transition::Missing);
    }
    if !crate::domain::script_version::has_lifecycle(&version) {
        return Ok(Transition::Unsupported);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT id FROM sale_items WHERE id = ? FOR UPDATE")
        .bind(item)
        .execute(&mut *tx)
        .await?;
    let Some(mut order) = lock_order(&mut tx, order_id).await? else {
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

/// A closed order whose units Redis still owes back, with what the release script needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Unreleased {
    /// The order.
    pub order_id: Uuid,
    /// Its sale.
    pub sale_id: u64,
    /// Its item.
    pub item_id: u64,
    /// The sale's script version.
    pub script_version: String,
    /// The sale's identity.
    pub sale_uid: String,
    /// When its window ended (expired orders), for the lateness metric.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
}

/// Expires up to `limit` orders whose window ended by `now`, oldest first: one transaction,
/// items locked in id order, then the orders (re-checked under their locks: one paid or
/// cancelled meanwhile stays as it is). Returns the orders expired now.
///
/// # Errors
/// The database failed; nothing is written.
pub async fn expire_due(
    pool: &MySqlPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Unreleased>, sqlx::Error> {
    let now = millis(now);
    let due: Vec<(Uuid, u64)> = sqlx::query_as(
        "SELECT order_id, item_id FROM orders WHERE status = ? AND expires_at <= ? \
         ORDER BY expires_at LIMIT ?",
    )
    .bind(STATUS_PENDING)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut items: Vec<u64> = due.iter().map(|(_, i)| *i).collect();
    items.sort_unstable();
    items.dedup();
    let mut tx = pool.begin().await?;
    let mut q = QueryBuilder::<MySql>::new("SELECT id FROM sale_items WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in &items {
        sep.push_bind(*id);
    }
    q.push(") ORDER BY id FOR UPDATE");
    q.build().execute(&mut *tx).await?;
    let mut q = QueryBuilder::<MySql>::new(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE status = "
    ));
    q.push_bind(STATUS_PENDING)
        .push(" AND expires_at <= ")
        .push_bind(now)
        .push(" AND order_id IN (");
    let mut sep = q.separated(", ");
    for (id, _) in &due {
        sep.push_bind(*id);
    }
    q.push(") FOR UPDATE");
    let mut won: Vec<OrderRow> = q.build_query_as().fetch_all(&mut *tx).await?;
    if won.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<MySql>::new("UPDATE orders SET status = ");
    q.push_bind(STATUS_EXPIRED)
        .push(", closed_at = ")
        .push_bind(now)
        .push(" WHERE order_id IN (");
    let mut sep = q.separated(", ");
    for o in &won {
        sep.push_bind(o.order_id);
    }
    q.push(")");
    q.build().execute(&mut *tx).await?;
    let mut units: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for o in &won {
        *units.entry(o.item_id).or_insert(0) += u64::from(o.quantity);
    }
    let mut q = QueryBuilder::<MySql>::new("UPDATE sale_items SET stock = stock + CASE id");
    for (id, n) in &units {
        q.push(" WHEN ").push_bind(*id).push(" THEN ").push_bind(*n);
    }
    q.push(" END, version = version + 1 WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in units.keys() {
        sep.push_bind(*id);
    }
    q.push(")");
    q.build().execute(&mut *tx).await?;
    for o in &mut won {
        o.status = STATUS_EXPIRED.to_string();
        o.closed_at = Some(now);
    }
    let events: Vec<LifecycleEvent> = won
        .iter()
        .map(|o| LifecycleEvent::of(o, "order_expired", now))
        .collect();
    insert_event(&mut tx, &events).await?;
    tx.commit().await?;
    // What the release needs, without reading the 1,000 rows again: each sale's version and
    // uid (one or a few rows).
    let mut sales: Vec<u64> = won.iter().map(|o| o.sale_id).collect();
    sales.sort_unstable();
    sales.dedup();
    let mut q =
        QueryBuilder::<MySql>::new("SELECT id, script_version, uid FROM sales WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in &sales {
        sep.push_bind(*id);
    }
    q.push(")");
    let pinned: std::collections::HashMap<u64, (String, String)> = q
        .build_query_as::<(u64, String, String)>()
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(id, v, uid)| (id, (v, uid)))
        .collect();
    Ok(won
        .into_iter()
        .filter_map(|o| {
            let (script_version, sale_uid) = pinned.get(&o.sale_id)?.clone();
            Some(Unreleased {
                order_id: o.order_id,
                sale_id: o.sale_id,
                item_id: o.item_id,
                script_version,
                sale_uid,
                expires_at: o.expires_at,
                closed_at: o.closed_at,
            })
        })
        .collect())
}

/// The release details of `ids`.
///
/// # Errors
/// The database failed.
pub async fn unreleased_of(pool: &MySqlPool, ids: &[Uuid]) -> Result<Vec<Unreleased>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT o.order_id, o.sale_id, o.item_id, s.script_version, s.uid AS sale_uid, \
         o.expires_at, o.closed_at FROM orders o JOIN sales s ON s.id = o.sale_id \
         WHERE o.released_at IS NULL AND o.order_id IN (",
    );
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(")");
    q.build_query_as().fetch_all(pool).await
}

/// Closed orders whose units Redis still owes back (a crash between the MySQL commit and the
/// release, Redis down), oldest first.
///
/// # Errors
/// The database failed.
pub async fn unreleased(pool: &MySqlPool, limit: u32) -> Result<Vec<Unreleased>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.order_id, o.sale_id, o.item_id, s.script_version, s.uid AS sale_uid, \
         o.expires_at, o.closed_at FROM orders o JOIN sales s ON s.id = o.sale_id \
         WHERE o.status IN (?, ?) AND o.released_at IS NULL ORDER BY o.closed_at LIMIT ?",
    )
    .bind(STATUS_CANCELLED)
    .bind(STATUS_EXPIRED)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Records that Redis took back the units of `ids`.
///
/// # Errors
/// The database failed.
pub async fn mark_released(
    pool: &MySqlPool,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new("UPDATE orders SET released_at = ");
    q.push_bind(now).push(" WHERE order_id IN (");
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(")");
    q.build().execute(pool).await?;
    Ok(())
}

/// One page of a buyer's orders, newest first, after `before` (exclusive) when given.
///
/// # Errors
/// The database failed.
pub async fn list_for_user(
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
