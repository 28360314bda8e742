//! Queries over `orders`, above all the batch persistence the consumer runs.
//!
//! Invariant: `sale_items.stock` only goes down inside [`persist_batch`], under
//! `SELECT ... FOR UPDATE` on the item rows, in the same transaction that inserts the orders.
//! Items are locked in id order, so two consumers never deadlock on each other.

mod persist;
pub(super) mod stock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, Transaction};
use uuid::Uuid;

pub use persist::{BatchOutcome, persist_batch};

/// A persisted order waiting for its payment; it holds its units.
pub(crate) const STATUS_PENDING: &str = "pending_payment";
/// A paid order; it holds its units for good.
pub(crate) const STATUS_PAID: &str = "paid";
/// Cancelled by its buyer; its units went back.
pub(crate) const STATUS_CANCELLED: &str = "cancelled";
/// Its payment window passed; its units went back.
pub(crate) const STATUS_EXPIRED: &str = "expired";
/// An order MySQL could not honour.
pub(crate) const STATUS_REJECTED: &str = "rejected";

/// True for the states whose units count against the stock (and the buyer's limit).
pub(crate) fn holds_units(status: &str) -> bool {
    status == STATUS_PENDING || status == STATUS_PAID
}

/// True for the states whose units went back to the sale.
pub fn released_units(status: &str) -> bool {
    status == STATUS_CANCELLED || status == STATUS_EXPIRED
}

/// Values per `IN (…)` list. MariaDB turns a list of 1,000 values or more
/// (`in_predicate_conversion_threshold`) into a join against a temporary table, which made one
/// 2,000-order batch's lookups take 0.2–0.5 s each (persistence fell from 112k to 1.6k orders/s).
pub(crate) const IN_LIST: usize = 500;

/// One `orders` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrderRow {
    /// Order id.
    pub order_id: Uuid,
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Buyer.
    pub user_id: String,
    /// The buyer's `Idempotency-Key`, if one was sent (schema 2 events on).
    pub idempotency_key: Option<String>,
    /// Units.
    pub quantity: u32,
    /// Cents per unit.
    pub price_cents: u64,
    /// `pending_payment`, `paid`, `cancelled`, `expired` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// When Redis reserved it.
    pub reserved_at: DateTime<Utc>,
    /// When MySQL stored it.
    pub persisted_at: DateTime<Utc>,
    /// When it expires unless paid (`None`: never, for sales before script v4).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment provider's reference of its payment.
    pub payment_ref: Option<String>,
    /// Cents paid.
    pub paid_cents: Option<u64>,
    /// When it was cancelled or expired.
    pub closed_at: Option<DateTime<Utc>>,
    /// When Redis took its units back.
    pub released_at: Option<DateTime<Utc>>,
}

/// The columns of [`OrderRow`], for every query that reads one.
pub(crate) const ORDER_COLUMNS: &str = "order_id, sale_id, item_id, user_id, idempotency_key, quantity, \
     price_cents, status, reject_reason, reserved_at, persisted_at, expires_at, paid_at, \
     payment_ref, paid_cents, closed_at, released_at";

/// Units and orders of one item in MySQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ItemTotals {
    /// Units held by persisted orders (`pending_payment` and `paid`).
    pub persisted_units: u64,
    /// Orders holding units (`pending_payment` and `paid`).
    pub persisted_orders: u64,
    /// Orders waiting for payment.
    pub pending_orders: u64,
    /// Paid orders.
    pub paid_orders: u64,
    /// Cancelled orders.
    pub cancelled_orders: u64,
    /// Expired orders.
    pub expired_orders: u64,
    /// Units given back by cancelled and expired orders.
    pub released_units: u64,
    /// Rejected orders.
    pub rejected_orders: u64,
}

/// One order by id.
///
/// # Errors
/// The database failed.
pub async fn get_order(pool: &MySqlPool, order_id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ?"
    )))
    .bind(order_id)
    .fetch_optional(pool)
    .await
}

/// Units and order counts of one item.
///
/// # Errors
/// The database failed.
pub(crate) async fn item_totals<'e>(
    db: impl sqlx::Executor<'e, Database = MySql>,
    item_id: u64,
) -> Result<ItemTotals, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT status, CAST(COUNT(*) AS SIGNED), CAST(COALESCE(SUM(quantity), 0) AS SIGNED) \
         FROM orders WHERE item_id = ? GROUP BY status",
    )
    .bind(item_id)
    .fetch_all(db)
    .await?;
    let mut t = ItemTotals::default();
    for (status, orders, units) in rows {
        let (orders, units) = (orders.max(0) as u64, units.max(0) as u64);
        if holds_units(&status) {
            t.persisted_orders += orders;
            t.persisted_units += units;
        }
        if released_units(&status) {
            t.released_units += units;
        }
        match status.as_str() {
            STATUS_PENDING => t.pending_orders = orders,
            STATUS_PAID => t.paid_orders = orders,
            STATUS_CANCELLED => t.cancelled_orders = orders,
            STATUS_EXPIRED => t.expired_orders = orders,
            STATUS_REJECTED => t.rejected_orders = orders,
            _ => {}
        }
    }
    Ok(t)
}

/// When the newest order of an item that is not rejected was reserved: the moment it sold out,
/// when it is sold out.
///
/// # Errors
/// The database failed.
pub(crate) async fn last_reserved_at(
    pool: &MySqlPool,
    item_id: u64,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MAX(reserved_at) FROM orders WHERE item_id = ? AND status <> 'rejected'",
    )
    .bind(item_id)
    .fetch_one(pool)
    .await
}

/// Every order of one item, read inside `tx` so it matches other reads of the same snapshot
/// (reconciliation compares them with the Redis ledger and the item's stock), handed to `each`
/// as it arrives instead of held all at once (an item of a large sale has millions).
///
/// # Errors
/// The database failed.
pub(crate) async fn each_item_order_in(
    tx: &mut Transaction<'_, MySql>,
    item_id: u64,
    mut each: impl FnMut(OrderRow),
) -> Result<(), sqlx::Error> {
    use futures::TryStreamExt;
    let query = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE item_id = ? ORDER BY order_id");
    let mut rows = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(query))
        .bind(item_id)
        .fetch(&mut **tx);
    while let Some(row) = rows.try_next().await? {
        each(row);
    }
    Ok(())
}

/// The orders of one item that came from its ledger and MySQL honoured (every status but
/// `rejected`): what a rebuild of its Redis state restores, read inside `tx` together with the
/// item's stock.
///
/// # Errors
/// The database failed.
pub(crate) async fn ledger_orders_in(
    tx: &mut Transaction<'_, MySql>,
    item_id: u64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE item_id = ? AND status <> ? ORDER BY order_id"
    )))
    .bind(item_id)
    .bind(STATUS_REJECTED)
    .fetch_all(&mut **tx)
    .await
}
