//! Queries over `orders`, above all the batch persistence the consumer runs.
//!
//! Invariant: `sale_items.stock` only goes down inside [`persist_batch`], under
//! `SELECT ... FOR UPDATE` on the item row, in the same transaction that inserts the orders.
//! Items are locked in id order, so two consumers never deadlock on each other.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::kafka::events::OrderReserved;

/// Status of an order counted against stock.
pub const STATUS_PERSISTED: &str = "persisted";
/// Status of an order MySQL could not honour.
pub const STATUS_REJECTED: &str = "rejected";

/// Rows per multi-row statement; well below MySQL's 65,535 placeholders.
const CHUNK: usize = 1_000;

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
    /// Units.
    pub quantity: u32,
    /// Cents per unit.
    pub price_cents: u64,
    /// `persisted` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// When Redis reserved it.
    pub reserved_at: DateTime<Utc>,
    /// When MySQL stored it.
    pub persisted_at: DateTime<Utc>,
}

/// Units and orders of one item in MySQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemTotals {
    /// Units of persisted orders.
    pub persisted_units: u64,
    /// Persisted orders.
    pub persisted_orders: u64,
    /// Rejected orders.
    pub rejected_orders: u64,
}

struct Decided<'a> {
    event: &'a OrderReserved,
    sale_id: u64,
    price_cents: u64,
    reject: Option<&'static str>,
}

/// Persists a batch of events in one transaction: per item (in id order) lock the row, skip
/// order ids already stored, check MySQL-side stock and per-user totals, insert, decrement.
/// An order MySQL cannot honour is stored as `rejected` with its reason, never dropped.
///
/// # Errors
/// The database failed; the transaction is rolled back and nothing is written.
pub async fn persist_batch(
    pool: &MySqlPool,
    events: &[OrderReserved],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut outcome = BatchOutcome::default();
    let mut seen = HashSet::with_capacity(events.len());
    let mut by_item: BTreeMap<u64, Vec<&OrderReserved>> = BTreeMap::new();
    for e in events {
        if seen.insert(e.order_id) {
            by_item.entry(e.item_id).or_default().push(e);
        } else {
            outcome.duplicates += 1;
        }
    }
    let mut tx = pool.begin().await?;
    for (item_id, events) in by_item {
        let item = persist_item(&mut tx, item_id, &events).await?;
        outcome.persisted += item.persisted;
        outcome.rejected += item.rejected;
        outcome.duplicates += item.duplicates;
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn persist_item(
    tx: &mut Transaction<'_, MySql>,
    item_id: u64,
    events: &[&OrderReserved],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut outcome = BatchOutcome::default();
    let row: Option<(u64, u32, u32, u64)> = sqlx::query_as(
        "SELECT sale_id, stock, per_user_limit, price_cents FROM sale_items WHERE id = ? FOR UPDATE",
    )
    .bind(item_id)
    .fetch_optional(&mut **tx)
    .await?;

    let existing = existing_ids(tx, events).await?;
    let fresh: Vec<&OrderReserved> = events
        .iter()
        .copied()
        .filter(|e| !existing.contains(&e.order_id))
        .collect();
    outcome.duplicates += (events.len() - fresh.len()) as u64;
    if fresh.is_empty() {
        return Ok(outcome);
    }

    let decided: Vec<Decided<'_>> = match row {
        None => fresh
            .iter()
            .map(|e| Decided {
                event: e,
                sale_id: e.sale_id,
                price_cents: e.price_cents,
                reject: Some("unknown_item"),
            })
            .collect(),
        Some((sale_id, stock, limit, price_cents)) => {
            let mut totals = user_totals(tx, item_id, &fresh).await?;
            let mut remaining = u64::from(stock);
            fresh
                .iter()
                .map(|e| {
                    let qty = u64::from(e.quantity);
                    let held = totals.entry(e.user_id.as_str()).or_insert(0);
                    let reject = if *held + qty > u64::from(limit) {
                        Some("user_limit")
                    } else if qty > remaining {
                        Some("stock_exhausted")
                    } else {
                        *held += qty;
                        remaining -= qty;
                        None
                    };
                    if e.sale_id != sale_id {
                        tracing::warn!(order_id = %e.order_id, item_id, "event names another sale than the item row");
                    }
                    Decided {
                        event: e,
                        sale_id,
                        price_cents,
                        reject,
                    }
                })
                .collect()
        }
    };

    for chunk in decided.chunks(CHUNK) {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO orders (order_id, sale_id, item_id, user_id, quantity, price_cents, \
             status, reject_reason, reserved_at) ",
        );
        insert.push_values(chunk, |mut b, d| {
            let reserved_at = DateTime::<Utc>::from_timestamp_millis(d.event.reserved_at_ms)
                .unwrap_or_else(Utc::now);
            b.push_bind(d.event.order_id)
                .push_bind(d.sale_id)
                .push_bind(d.event.item_id)
                .push_bind(d.event.user_id.as_str())
                .push_bind(d.event.quantity)
                .push_bind(d.price_cents)
                .push_bind(if d.reject.is_some() {
                    STATUS_REJECTED
                } else {
                    STATUS_PERSISTED
                })
                .push_bind(d.reject)
                .push_bind(reserved_at);
        });
        insert.build().execute(&mut **tx).await?;
    }

    let units: u64 = decided
        .iter()
        .filter(|d| d.reject.is_none())
        .map(|d| u64::from(d.event.quantity))
        .sum();
    outcome.persisted = decided.iter().filter(|d| d.reject.is_none()).count() as u64;
    outcome.rejected = decided.len() as u64 - outcome.persisted;
    for d in decided.iter().filter(|d| d.reject.is_some()) {
        tracing::warn!(
            order_id = %d.event.order_id,
            item_id,
            reason = d.reject.unwrap_or_default(),
            "order rejected by MySQL (Redis and MySQL disagree; reconciliation will show it)"
        );
    }
    if units > 0 {
        sqlx::query("UPDATE sale_items SET stock = stock - ?, version = version + 1 WHERE id = ?")
            .bind(units)
            .bind(item_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(outcome)
}

async fn existing_ids(
    tx: &mut Transaction<'_, MySql>,
    events: &[&OrderReserved],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let mut found = HashSet::new();
    for chunk in events.chunks(CHUNK) {
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

async fn user_totals<'e>(
    tx: &mut Transaction<'_, MySql>,
    item_id: u64,
    events: &[&'e OrderReserved],
) -> Result<HashMap<&'e str, u64>, sqlx::Error> {
    let users: Vec<&'e str> = {
        let mut set = HashSet::new();
        events
            .iter()
            .map(|e| e.user_id.as_str())
            .filter(|u| set.insert(*u))
            .collect()
    };
    let mut totals: HashMap<&'e str, u64> = HashMap::with_capacity(users.len());
    for chunk in users.chunks(CHUNK) {
        let mut q = QueryBuilder::<MySql>::new(
            "SELECT user_id, CAST(SUM(quantity) AS SIGNED) FROM orders WHERE item_id = ",
        );
        q.push_bind(item_id);
        q.push(" AND status = ");
        q.push_bind(STATUS_PERSISTED);
        q.push(" AND user_id IN (");
        let mut sep = q.separated(", ");
        for u in chunk {
            sep.push_bind(*u);
        }
        q.push(") GROUP BY user_id");
        let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut **tx).await?;
        for (user, units) in rows {
            if let Some(u) = chunk.iter().find(|u| **u == user) {
                totals.insert(u, units.max(0) as u64);
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
    sqlx::query_as(
        "SELECT order_id, sale_id, item_id, user_id, quantity, price_cents, status, reject_reason, \
         reserved_at, persisted_at FROM orders WHERE order_id = ?",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await
}

/// Units and order counts of one item.
///
/// # Errors
/// The database failed.
pub async fn item_totals(pool: &MySqlPool, item_id: u64) -> Result<ItemTotals, sqlx::Error> {
    let (persisted_units, persisted_orders, rejected_orders): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'persisted' THEN quantity END), 0) AS SIGNED), \
         CAST(COUNT(CASE WHEN status = 'persisted' THEN 1 END) AS SIGNED), \
         CAST(COUNT(CASE WHEN status = 'rejected' THEN 1 END) AS SIGNED) \
         FROM orders WHERE item_id = ?",
    )
    .bind(item_id)
    .fetch_one(pool)
    .await?;
    Ok(ItemTotals {
        persisted_units: persisted_units.max(0) as u64,
        persisted_orders: persisted_orders.max(0) as u64,
        rejected_orders: rejected_orders.max(0) as u64,
    })
}

/// Every order of one item (reconciliation compares them with the Redis ledger).
///
/// # Errors
/// The database failed.
pub async fn item_orders(pool: &MySqlPool, item_id: u64) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, sale_id, item_id, user_id, quantity, price_cents, status, reject_reason, \
         reserved_at, persisted_at FROM orders WHERE item_id = ? ORDER BY order_id",
    )
    .bind(item_id)
    .fetch_all(pool)
    .await
}
