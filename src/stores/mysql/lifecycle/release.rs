//! Expiry of due orders and the release bookkeeping: which closed orders Redis still owes
//! units back, and the record that it took them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use super::{
    events::{LifecycleEvent, insert_event},
    millis,
};
use crate::stores::mysql::orders::{
    IN_LIST, ORDER_COLUMNS, OrderRow, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_PENDING, stock,
};

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
    /// Its item's stock shards.
    pub shards: u16,
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
    let due = find_due(pool, now, limit).await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    lock_items(&mut tx, &items_in_order(&due)).await?;
    let mut won = lock_still_due(&mut tx, &due, now).await?;
    if won.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    mark_expired(&mut tx, &won, now).await?;
    stock::give_back(&mut tx, &units_of(&won)).await?;
    record_expired(&mut tx, &mut won, now).await?;
    tx.commit().await?;
    let pinned = pinned_sales(pool, &won).await?;
    let shards = item_shards(pool, &won).await?;
    Ok(won
        .into_iter()
        .filter_map(|o| {
            let (script_version, sale_uid) = pinned.get(&o.sale_id)?.clone();
            Some(Unreleased {
                shards: shards.get(&o.item_id).copied().unwrap_or(1),
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

/// Up to `limit` pending orders (id and item) whose window ended by `now`, oldest first; read
/// before the transaction, without locks.
async fn find_due(
    pool: &MySqlPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<(Uuid, u64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, item_id FROM orders WHERE status = ? AND expires_at <= ? \
         ORDER BY expires_at LIMIT ?",
    )
    .bind(STATUS_PENDING)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The items of `due`, each once, in id order (the order their rows are locked in).
fn items_in_order(due: &[(Uuid, u64)]) -> Vec<u64> {
    let mut items: Vec<u64> = due.iter().map(|(_, i)| *i).collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// Locks the item rows `items` (in id order) in one statement, before any order row.
async fn lock_items(tx: &mut Transaction<'_, MySql>, items: &[u64]) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new("SELECT id FROM sale_items WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in items {
        sep.push_bind(*id);
    }
    q.push(") ORDER BY id FOR UPDATE");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Locks the orders of `due` that are still pending and due at `now`, and reads them: one paid
/// or cancelled since [`find_due`] is left out.
async fn lock_still_due(
    tx: &mut Transaction<'_, MySql>,
    due: &[(Uuid, u64)],
    now: DateTime<Utc>,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut won: Vec<OrderRow> = Vec::with_capacity(due.len());
    for chunk in due.chunks(IN_LIST) {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status = "
        ));
        q.push_bind(STATUS_PENDING)
            .push(" AND expires_at <= ")
            .push_bind(now)
            .push(" AND order_id IN (");
        let mut sep = q.separated(", ");
        for (id, _) in chunk {
            sep.push_bind(*id);
        }
        q.push(") FOR UPDATE");
        won.extend(q.build_query_as::<OrderRow>().fetch_all(&mut **tx).await?);
    }
    Ok(won)
}

/// Sets `orders` to `expired`, closed at `now`.
async fn mark_expired(
    tx: &mut Transaction<'_, MySql>,
    orders: &[OrderRow],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for chunk in orders.chunks(IN_LIST) {
        let mut q = QueryBuilder::<MySql>::new("UPDATE orders SET status = ");
        q.push_bind(STATUS_EXPIRED)
            .push(", closed_at = ")
            .push_bind(now)
            .push(" WHERE order_id IN (");
        let mut sep = q.separated(", ");
        for o in chunk {
            sep.push_bind(o.order_id);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Shows `orders` as expired at `now` and writes an `order_expired` event for each.
async fn record_expired(
    tx: &mut Transaction<'_, MySql>,
    orders: &mut [OrderRow],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for o in orders.iter_mut() {
        o.status = STATUS_EXPIRED.to_string();
        o.closed_at = Some(now);
    }
    let events: Vec<LifecycleEvent> = orders
        .iter()
        .map(|o| LifecycleEvent::of(o, "order_expired", now))
        .collect();
    insert_event(tx, &events).await
}

/// Units `orders` hold, per item, in id order.
fn units_of(orders: &[OrderRow]) -> BTreeMap<u64, u64> {
    let mut units: BTreeMap<u64, u64> = BTreeMap::new();
    for o in orders {
        *units.entry(o.item_id).or_insert(0) += u64::from(o.quantity);
    }
    units
}

/// What the release needs, without reading the 1,000 rows again: each sale's version and
/// uid (one or a few rows), by sale id.
async fn pinned_sales(
    pool: &MySqlPool,
    orders: &[OrderRow],
) -> Result<HashMap<u64, (String, String)>, sqlx::Error> {
    let mut sales: Vec<u64> = orders.iter().map(|o| o.sale_id).collect();
    sales.sort_unstable();
    sales.dedup();
    let mut q =
        QueryBuilder::<MySql>::new("SELECT id, script_version, uid FROM sales WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in &sales {
        sep.push_bind(*id);
    }
    q.push(")");
    Ok(q.build_query_as::<(u64, String, String)>()
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(id, v, uid)| (id, (v, uid)))
        .collect())
}

/// Each item's stock shards, by item id.
async fn item_shards(
    pool: &MySqlPool,
    orders: &[OrderRow],
) -> Result<HashMap<u64, u16>, sqlx::Error> {
    let mut items: Vec<u64> = orders.iter().map(|o| o.item_id).collect();
    items.sort_unstable();
    items.dedup();
    let mut q = QueryBuilder::<MySql>::new("SELECT id, shards FROM sale_items WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in &items {
        sep.push_bind(*id);
    }
    q.push(")");
    Ok(q.build_query_as::<(u64, u16)>()
        .fetch_all(pool)
        .await?
        .into_iter()
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
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST) {
        let mut q = QueryBuilder::<MySql>::new(
            "SELECT o.order_id, o.sale_id, o.item_id, s.script_version, s.uid AS sale_uid, \
             i.shards, o.expires_at, o.closed_at FROM orders o JOIN sales s ON s.id = o.sale_id \
             JOIN sale_items i ON i.id = o.item_id WHERE o.released_at IS NULL AND o.order_id IN (",
        );
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        found.extend(q.build_query_as::<Unreleased>().fetch_all(pool).await?);
    }
    Ok(found)
}

/// Closed orders whose units Redis still owes back (a crash between the MySQL commit and the
/// release, Redis down), oldest first.
///
/// # Errors
/// The database failed.
pub async fn unreleased(pool: &MySqlPool, limit: u32) -> Result<Vec<Unreleased>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.order_id, o.sale_id, o.item_id, s.script_version, s.uid AS sale_uid, \
         i.shards, o.expires_at, o.closed_at FROM orders o JOIN sales s ON s.id = o.sale_id \
         JOIN sale_items i ON i.id = o.item_id WHERE o.status IN (?, ?) AND o.released_at IS NULL ORDER BY o.closed_at LIMIT ?",
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
    for chunk in ids.chunks(IN_LIST) {
        let mut q = QueryBuilder::<MySql>::new("UPDATE orders SET released_at = ");
        q.push_bind(now).push(" WHERE order_id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        q.build().execute(pool).await?;
    }
    Ok(())
}
