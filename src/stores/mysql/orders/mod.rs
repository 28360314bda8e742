//! Queries over `orders`, above all the batch persistence the consumer runs.
//!
//! Invariant: `sale_items.stock` only goes down inside [`persist_batch`], under
//! `SELECT ... FOR UPDATE` on the item rows, in the same transaction that inserts the orders.
//! Items are locked in id order, so two consumers never deadlock on each other.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::domain::order_reserved::OrderReserved;

/// A persisted order waiting for its payment; it holds its units.
pub const STATUS_PENDING: &str = "pending_payment";
/// A paid order; it holds its units for good.
pub const STATUS_PAID: &str = "paid";
/// Cancelled by its buyer; its units went back.
pub const STATUS_CANCELLED: &str = "cancelled";
/// Its payment window passed; its units went back.
pub const STATUS_EXPIRED: &str = "expired";
/// An order MySQL could not honour.
pub const STATUS_REJECTED: &str = "rejected";

/// True for the states whose units count against the stock (and the buyer's limit).
pub fn holds_units(status: &str) -> bool {
    status == STATUS_PENDING || status == STATUS_PAID
}

/// True for the states whose units went back to the sale.
pub fn released_units(status: &str) -> bool {
    status == STATUS_CANCELLED || status == STATUS_EXPIRED
}

/// Rows per multi-row statement; well below MySQL's 65,535 placeholders.
const CHUNK: usize = 1_000;
/// Values per `IN (…)` list. MariaDB turns a list of 1,000 values or more
/// (`in_predicate_conversion_threshold`) into a join against a temporary table, which made one
/// 2,000-order batch's lookups take 0.2–0.5 s each (persistence fell from 112k to 1.6k orders/s).
pub(crate) const IN_LIST: usize = 500;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    /// New orders counted against stock.
    pub persisted: u64,
    /// New orders stored as rejected.
    pub rejected: u64,
    /// Orders already present (redelivery) or repeated within the batch; nothing changed.
    pub duplicates: u64,
}

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
pub const ORDER_COLUMNS: &str = "order_id, sale_id, item_id, user_id, idempotency_key, quantity, \
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

struct Decided<'a> {
    event: &'a OrderReserved,
    sale_id: u64,
    price_cents: u64,
    window: Option<u32>,
    reject: Option<&'static str>,
}

/// An item row locked for the batch.
#[derive(sqlx::FromRow)]
struct LockedItem {
    id: u64,
    sale_id: u64,
    stock: u32,
    per_user_limit: u32,
    price_cents: u64,
    payment_window_secs: Option<u32>,
}

/// Persists a batch of events in one transaction: lock the batch's item rows (one statement,
/// in id order), skip order ids already stored, check MySQL-side stock and per-user totals,
/// insert, decrement. A handful of statements per batch however many items it spans. An order
/// MySQL cannot honour is stored as `rejected` with its reason, never dropped.
///
/// # Errors
/// The database failed; the transaction is rolled back and nothing is written.
pub async fn persist_batch(
    pool: &MySqlPool,
    events: &[OrderReserved],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut outcome = BatchOutcome::default();
    let mut seen = HashSet::with_capacity(events.len());
    let mut unique = Vec::with_capacity(events.len());
    for e in events {
        if seen.insert(e.order_id) {
            unique.push(e);
        } else {
            outcome.duplicates += 1;
        }
    }
    if unique.is_empty() {
        return Ok(outcome);
    }
    let item_ids: Vec<u64> = {
        let set: BTreeMap<u64, ()> = unique.iter().map(|e| (e.item_id, ())).collect();
        set.into_keys().collect()
    };

    let mut tx = pool.begin().await?;
    let items = lock_items(&mut tx, &item_ids).await?;
    let existing = existing_ids(&mut tx, &unique).await?;
    let fresh: Vec<&OrderReserved> = unique
        .into_iter()
        .filter(|e| !existing.contains(&e.order_id))
        .collect();
    outcome.duplicates += existing.len() as u64;
    if fresh.is_empty() {
        tx.commit().await?;
        return Ok(outcome);
    }
    let mut totals = user_totals(&mut tx, &fresh).await?;

    let mut remaining: HashMap<u64, u64> =
        items.iter().map(|i| (i.id, u64::from(i.stock))).collect();
    let mut units: BTreeMap<u64, u64> = BTreeMap::new();
    let decided: Vec<Decided<'_>> = fresh
        .iter()
        .map(|e| {
            let Some(item) = items.iter().find(|i| i.id == e.item_id) else {
                return Decided {
                    event: e,
                    sale_id: e.sale_id,
                    price_cents: e.price_cents,
                    window: None,
                    reject: Some("unknown_item"),
                };
            };
            let qty = u64::from(e.quantity);
            let held = totals.entry((e.item_id, e.user_id.as_str())).or_insert(0);
            let left = remaining.entry(e.item_id).or_insert(0);
            let reject = if *held + qty > u64::from(item.per_user_limit) {
                Some("user_limit")
            } else if qty > *left {
                Some("stock_exhausted")
            } else {
                *held += qty;
                *left -= qty;
                *units.entry(e.item_id).or_insert(0) += qty;
                None
            };
            if e.sale_id != item.sale_id {
                tracing::warn!(order_id = %e.order_id, item_id = e.item_id, "event names another sale than the item row");
            }
            Decided {
                event: e,
                sale_id: item.sale_id,
                price_cents: item.price_cents,
                window: item.payment_window_secs,
                reject,
            }
        })
        .collect();

    for chunk in decided.chunks(CHUNK) {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO orders (order_id, sale_id, item_id, user_id, idempotency_key, quantity, \
             price_cents, status, reject_reason, reserved_at, expires_at) ",
        );
        insert.push_values(chunk, |mut b, d| {
            let reserved_at = DateTime::<Utc>::from_timestamp_millis(d.event.reserved_at_ms)
                .unwrap_or_else(Utc::now);
            b.push_bind(d.event.order_id)
                .push_bind(d.sale_id)
                .push_bind(d.event.item_id)
                .push_bind(d.event.user_id.as_str())
                .push_bind(d.event.idempotency_key.as_deref())
                .push_bind(d.event.quantity)
                .push_bind(d.price_cents)
                .push_bind(if d.reject.is_some() {
                    STATUS_REJECTED
                } else {
                    STATUS_PENDING
                })
                .push_bind(d.reject)
                .push_bind(reserved_at)
                // The payment window runs from the reservation: what the buyer was told.
                .push_bind(
                    d.window
                        .filter(|_| d.reject.is_none())
                        .map(|w| reserved_at + chrono::Duration::seconds(i64::from(w))),
                );
        });
        insert.build().execute(&mut *tx).await?;
    }

    if !units.is_empty() {
        let mut update =
            QueryBuilder::<MySql>::new("UPDATE sale_items SET stock = stock - CASE id");
        for (id, n) in &units {
            update
                .push(" WHEN ")
                .push_bind(*id)
                .push(" THEN ")
                .push_bind(*n);
        }
        update.push(" END, version = version + 1 WHERE id IN (");
        let mut sep = update.separated(", ");
        for id in units.keys() {
            sep.push_bind(*id);
        }
        update.push(")");
        update.build().execute(&mut *tx).await?;
    }
    // Rows written, not committed: a crash here leaves MySQL as it was.
    crate::observe::failpoint::pause_if_armed("consumer.before_mysql_commit").await;
    tx.commit().await?;

    outcome.persisted = decided.iter().filter(|d| d.reject.is_none()).count() as u64;
    outcome.rejected = decided.len() as u64 - outcome.persisted;
    for d in decided.iter().filter(|d| d.reject.is_some()) {
        tracing::warn!(
            order_id = %d.event.order_id,
            item_id = d.event.item_id,
            reason = d.reject.unwrap_or_default(),
            "order rejected by MySQL (Redis and MySQL disagree; reconciliation will show it)"
        );
    }
    Ok(outcome)
}

/// Locks the item rows of a batch in one statement; InnoDB takes the locks in primary-key
/// order, so two consumers locking overlapping items never deadlock on each other.
async fn lock_items(
    tx: &mut Transaction<'_, MySql>,
    ids: &[u64],
) -> Result<Vec<LockedItem>, sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT id, sale_id, stock, per_user_limit, price_cents, payment_window_secs FROM sale_items \
         WHERE id IN (",
    );
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(") ORDER BY id FOR UPDATE");
    q.build_query_as().fetch_all(&mut **tx).await
}

async fn existing_ids(
    tx: &mut Transaction<'_, MySql>,
    events: &[&OrderReserved],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let mut found = HashSet::new();
    for chunk in events.chunks(IN_LIST) {
        let mut q = QueryBuilder::<MySql>::new("SELECT order_id FROM orders WHERE order_id IN (");
        let mut sep = q.separated(", ");
        for e in chunk {
            sep.push_bind(e.order_id);
        }
        q.push(")");
        let ids: Vec<Uuid> = q.build_query_scalar().fetch_all(&mut **tx).await?;
        found.extend(ids);
    }
    Ok(found)
}

/// Persisted units per (item, user) among the batch's buyers, probing the
/// `(item_id, user_id, status)` index with exactly the pairs the batch holds.
async fn user_totals<'e>(
    tx: &mut Transaction<'_, MySql>,
    events: &[&'e OrderReserved],
) -> Result<HashMap<(u64, &'e str), u64>, sqlx::Error> {
    let pairs: Vec<(u64, &'e str)> = {
        let mut set = HashSet::new();
        events
            .iter()
            .map(|e| (e.item_id, e.user_id.as_str()))
            .filter(|p| set.insert(*p))
            .collect()
    };
    let mut totals = HashMap::with_capacity(pairs.len());
    for chunk in pairs.chunks(IN_LIST) {
        let mut q = QueryBuilder::<MySql>::new(
            "SELECT item_id, user_id, CAST(SUM(quantity) AS SIGNED) FROM orders WHERE (item_id, user_id) IN (",
        );
        let mut sep = q.separated(", ");
        for (item, user) in chunk {
            sep.push("(")
                .push_bind_unseparated(*item)
                .push_unseparated(", ")
                .push_bind_unseparated(*user)
                .push_unseparated(")");
        }
        q.push(") AND status IN (")
            .push_bind(STATUS_PENDING)
            .push(", ")
            .push_bind(STATUS_PAID)
            .push(") GROUP BY item_id, user_id");
        let rows: Vec<(u64, String, i64)> = q.build_query_as().fetch_all(&mut **tx).await?;
        let asked: HashSet<&'e str> = chunk.iter().map(|(_, u)| *u).collect();
        for (item, user, units) in rows {
            if let Some(u) = asked.get(user.as_str()) {
                totals.insert((item, *u), units.max(0) as u64);
            }
        }
    }
    Ok(totals)
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
pub async fn item_totals(pool: &MySqlPool, item_id: u64) -> Result<ItemTotals, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT status, CAST(COUNT(*) AS SIGNED), CAST(COALESCE(SUM(quantity), 0) AS SIGNED) \
         FROM orders WHERE item_id = ? GROUP BY status",
    )
    .bind(item_id)
    .fetch_all(pool)
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
pub async fn last_reserved_at(
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
pub async fn each_item_order_in(
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
pub async fn ledger_orders_in(
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
