//! The batch persistence the consumer runs: one transaction per batch of reservations, in steps
//! (lock the items, skip the orders already stored, decide, insert, take the stock, commit).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};
use uuid::Uuid;

use super::{IN_LIST, STATUS_PAID, STATUS_PENDING, STATUS_REJECTED, stock};
use crate::domain::order_reserved::OrderReserved;

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
    let unique = first_of_each(events, &mut outcome);
    if unique.is_empty() {
        return Ok(outcome);
    }
    let item_ids = item_ids_in_order(&unique);

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
    let totals = user_totals(&mut tx, &fresh).await?;
    let decided = decide(&fresh, &items, totals);
    insert_orders(&mut tx, &decided).await?;
    stock::take(&mut tx, &units_taken(&decided)).await?;
    // Rows written, not committed: a crash here leaves MySQL as it was.
    crate::observe::failpoint::pause_if_armed("consumer.before_mysql_commit").await;
    tx.commit().await?;

    outcome.persisted = decided.iter().filter(|d| d.reject.is_none()).count() as u64;
    outcome.rejected = decided.len() as u64 - outcome.persisted;
    warn_rejected(&decided);
    Ok(outcome)
}

/// The first event of each order id, in batch order; the repeats count as duplicates.
fn first_of_each<'e>(
    events: &'e [OrderReserved],
    outcome: &mut BatchOutcome,
) -> Vec<&'e OrderReserved> {
    let mut seen = HashSet::with_capacity(events.len());
    let mut unique = Vec::with_capacity(events.len());
    for e in events {
        if seen.insert(e.order_id) {
            unique.push(e);
        } else {
            outcome.duplicates += 1;
        }
    }
    unique
}

/// The items the batch names, each once, in id order (the order their rows are locked in).
fn item_ids_in_order(events: &[&OrderReserved]) -> Vec<u64> {
    let set: BTreeMap<u64, ()> = events.iter().map(|e| (e.item_id, ())).collect();
    set.into_keys().collect()
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

/// Decides each fresh order in batch order against its locked item: the units left (the
/// item's stock less what earlier orders of the batch took) and the buyer's total so far.
fn decide<'e>(
    fresh: &[&'e OrderReserved],
    items: &[LockedItem],
    mut totals: HashMap<(u64, &'e str), u64>,
) -> Vec<Decided<'e>> {
    let mut remaining: HashMap<u64, u64> =
        items.iter().map(|i| (i.id, u64::from(i.stock))).collect();
    fresh
        .iter()
        .map(|e| decide_one(e, items, &mut totals, &mut remaining))
        .collect()
}

/// One order's verdict: `unknown_item`, `user_limit`, `stock_exhausted`, or accepted (its
/// units then count against the buyer's total and the units left).
fn decide_one<'e>(
    e: &'e OrderReserved,
    items: &[LockedItem],
    totals: &mut HashMap<(u64, &'e str), u64>,
    remaining: &mut HashMap<u64, u64>,
) -> Decided<'e> {
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
}

/// Inserts every decided order, accepted (`pending_payment`) and rejected alike, in multi-row
/// statements of [`CHUNK`] rows.
async fn insert_orders(
    tx: &mut Transaction<'_, MySql>,
    decided: &[Decided<'_>],
) -> Result<(), sqlx::Error> {
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
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Units the accepted orders take, per item, in id order.
fn units_taken(decided: &[Decided<'_>]) -> BTreeMap<u64, u64> {
    let mut units: BTreeMap<u64, u64> = BTreeMap::new();
    for d in decided.iter().filter(|d| d.reject.is_none()) {
        *units.entry(d.event.item_id).or_insert(0) += u64::from(d.event.quantity);
    }
    units
}

/// Logs each order stored as rejected, with its reason.
fn warn_rejected(decided: &[Decided<'_>]) {
    for d in decided.iter().filter(|d| d.reject.is_some()) {
        tracing::warn!(
            order_id = %d.event.order_id,
            item_id = d.event.item_id,
            reason = d.reject.unwrap_or_default(),
            "order rejected by MySQL (Redis and MySQL disagree; reconciliation will show it)"
        );
    }
}
