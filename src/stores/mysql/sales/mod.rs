//! Queries over `sales` and `sale_items`.

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction};

use crate::domain::{
    NewSale,
    sale::{Admission, ItemPatch},
};

/// Status of a sale whose stock is not in Redis yet.
pub(crate) const STATUS_CREATED: &str = "created";
/// Status of a sale whose state is being written to Redis: set before the first Redis write,
/// so a sale still `created` has never had state in Redis (and cannot have sold), whatever
/// crashed when.
pub(crate) const STATUS_WARMING: &str = "warming";
/// Status of a sale whose stock is in Redis.
pub(crate) const STATUS_WARMED: &str = "warmed";

mod rows;

pub use rows::{ItemMeta, ItemRow, LiveItem, SaleRecord, SaleRow};

const SALE_COLUMNS: &str = "id, uid, name, starts_at, ends_at, status, script_version, warmed_at, \
                            version, created_at, updated_at, admission";
const ITEM_COLUMNS: &str = "id, sale_id, sku, title, price_cents, initial_stock, stock, \
                            per_user_limit, payment_window_secs, shards, version";

/// Inserts a sale and its items in one transaction.
///
/// # Errors
/// The database failed; nothing is written.
pub async fn insert_sale(
    pool: &MySqlPool,
    sale: &NewSale,
    script_version: &str,
) -> Result<SaleRecord, sqlx::Error> {
    begin_sale(pool, sale, script_version).await?.commit().await
}

/// A sale inserted in a transaction not yet committed: its ids are known, and dropping it
/// writes nothing.
pub struct PendingSale {
    tx: Transaction<'static, MySql>,
    /// The sale and its items as they will be stored.
    pub record: SaleRecord,
}

impl PendingSale {
    /// Stores the sale.
    ///
    /// # Errors
    /// The database failed; nothing is written.
    pub async fn commit(self) -> Result<SaleRecord, sqlx::Error> {
        self.tx.commit().await?;
        Ok(self.record)
    }
}

/// Inserts a sale and its items without committing, so that the caller can check something
/// that needs their ids before they are stored.
///
/// # Errors
/// The database failed; nothing is written.
pub async fn begin_sale(
    pool: &MySqlPool,
    sale: &NewSale,
    script_version: &str,
) -> Result<PendingSale, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let result = sqlx::query(
        "INSERT INTO sales (uid, name, starts_at, ends_at, status, script_version, admission) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(&sale.name)
    .bind(sale.starts_at)
    .bind(sale.ends_at)
    .bind(STATUS_CREATED)
    .bind(script_version)
    .bind(sale.admission.to_json())
    .execute(&mut *tx)
    .await?;
    let sale_id = result.last_insert_id();
    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO sale_items (sale_id, sku, title, price_cents, initial_stock, stock, \
         per_user_limit, payment_window_secs, shards) ",
    );
    insert.push_values(&sale.items, |mut row, item| {
        row.push_bind(sale_id)
            .push_bind(&item.sku)
            .push_bind(&item.title)
            .push_bind(item.price_cents)
            .push_bind(item.stock)
            .push_bind(item.stock)
            .push_bind(item.per_user_limit)
            .push_bind(Some(item.payment_window_secs))
            .push_bind(item.shards);
    });
    insert.build().execute(&mut *tx).await?;
    let record = fetch_sale(&mut tx, sale_id, false)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(PendingSale { tx, record })
}

async fn fetch_sale(
    tx: &mut Transaction<'_, MySql>,
    id: u64,
    for_update: bool,
) -> Result<Option<SaleRecord>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sale: Option<SaleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SALE_COLUMNS} FROM sales WHERE id = ?{lock}"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(sale) = sale else { return Ok(None) };
    let items: Vec<ItemRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLUMNS} FROM sale_items WHERE sale_id = ? ORDER BY id{lock}"
    )))
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Some(SaleRecord { sale, items }))
}

/// A sale with its items.
///
/// # Errors
/// The database failed.
pub async fn get_sale(pool: &MySqlPool, id: u64) -> Result<Option<SaleRecord>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let record = fetch_sale(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(record)
}

/// A sale with its items, rows locked until `tx` ends (PATCH, prewarm bookkeeping).
///
/// # Errors
/// The database failed.
pub(crate) async fn lock_sale(
    tx: &mut Transaction<'_, MySql>,
    id: u64,
) -> Result<Option<SaleRecord>, sqlx::Error> {
    fetch_sale(tx, id, true).await
}

/// One page of sales, newest first, and the total count.
///
/// # Errors
/// The database failed.
pub(crate) async fn list_sales(
    pool: &MySqlPool,
    limit: u32,
    offset: u64,
) -> Result<(Vec<SaleRow>, u64), sqlx::Error> {
    let rows: Vec<SaleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SALE_COLUMNS} FROM sales ORDER BY id DESC LIMIT ? OFFSET ?"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sales")
        .fetch_one(pool)
        .await?;
    Ok((rows, total.max(0) as u64))
}

/// How many items each of `sale_ids` has (absent: none).
///
/// # Errors
/// The database failed.
pub(crate) async fn item_counts(
    pool: &MySqlPool,
    sale_ids: &[u64],
) -> Result<std::collections::HashMap<u64, u64>, sqlx::Error> {
    if sale_ids.is_empty() {
        return Ok(Default::default());
    }
    let mut q = sqlx::QueryBuilder::new(
        "SELECT sale_id, CAST(COUNT(*) AS UNSIGNED) FROM sale_items WHERE sale_id IN (",
    );
    let mut ids = q.separated(", ");
    for id in sale_ids {
        ids.push_bind(*id);
    }
    q.push(") GROUP BY sale_id");
    let rows: Vec<(u64, u64)> = q.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

/// The sale-level terms a PATCH writes (each the new value or the stored one).
pub(crate) struct Changed<'a> {
    /// Display name.
    pub name: &'a str,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end.
    pub ends_at: DateTime<Utc>,
    /// Admission policy.
    pub admission: &'a Admission,
}

/// Writes a validated patch to a sale locked by [`lock_sale`] and bumps its version.
///
/// # Errors
/// The database failed.
pub(crate) async fn apply_patch(
    tx: &mut Transaction<'_, MySql>,
    sale: &SaleRow,
    changed: &Changed<'_>,
    items: &[ItemPatch],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sales SET name = ?, starts_at = ?, ends_at = ?, admission = ?, version = version + 1 \
         WHERE id = ?",
    )
    .bind(changed.name)
    .bind(changed.starts_at)
    .bind(changed.ends_at)
    .bind(changed.admission.to_json())
    .bind(sale.id)
    .execute(&mut **tx)
    .await?;
    for item in items {
        sqlx::query(
            "UPDATE sale_items SET title = COALESCE(?, title), price_cents = COALESCE(?, price_cents), \
             initial_stock = COALESCE(?, initial_stock), stock = COALESCE(?, stock), \
             per_user_limit = COALESCE(?, per_user_limit), \
             payment_window_secs = IF(payment_window_secs IS NULL, NULL, COALESCE(?, payment_window_secs)), \
             version = version + 1 WHERE id = ? AND sale_id = ?",
        )
        .bind(&item.title)
        .bind(item.price_cents)
        .bind(item.stock)
        .bind(item.stock)
        .bind(item.per_user_limit)
        .bind(item.payment_window_secs)
        .bind(item.id)
        .bind(sale.id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Records that a sale's state is about to be written to Redis (from `created` only).
///
/// # Errors
/// The database failed.
pub(crate) async fn mark_warming(pool: &MySqlPool, id: u64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sales SET status = ? WHERE id = ? AND status = ?")
        .bind(STATUS_WARMING)
        .bind(id)
        .bind(STATUS_CREATED)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records that a sale's stock is in Redis.
///
/// # Errors
/// The database failed.
pub(crate) async fn mark_warmed(pool: &MySqlPool, id: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sales SET status = ?, warmed_at = COALESCE(warmed_at, CURRENT_TIMESTAMP(3)) WHERE id = ?",
    )
    .bind(STATUS_WARMED)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// An item's remaining stock, read inside `tx` (after the orders the caller read there).
///
/// # Errors
/// The database failed, or there is no such item.
pub(crate) async fn item_stock(
    tx: &mut Transaction<'_, MySql>,
    item_id: u64,
) -> Result<u32, sqlx::Error> {
    sqlx::query_scalar("SELECT stock FROM sale_items WHERE id = ?")
        .bind(item_id)
        .fetch_one(&mut **tx)
        .await
}

/// The highest item id (0 when there is none): ids come from AUTO_INCREMENT and items are
/// never deleted, so no item has a higher one.
///
/// # Errors
/// The database failed.
pub(crate) async fn highest_item_id(pool: &MySqlPool) -> Result<u64, sqlx::Error> {
    let id: Option<u64> = sqlx::query_scalar("SELECT MAX(id) FROM sale_items")
        .fetch_one(pool)
        .await?;
    Ok(id.unwrap_or(0))
}

/// The buy path's view of one item.
///
/// # Errors
/// The database failed.
pub(crate) async fn item_meta(
    pool: &MySqlPool,
    item_id: u64,
) -> Result<Option<ItemMeta>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.id AS item_id, i.sale_id, i.price_cents, i.per_user_limit, s.starts_at, s.ends_at, \
         s.script_version, s.uid AS sale_uid, s.admission, i.shards FROM sale_items i JOIN sales s ON s.id = i.sale_id \
         WHERE i.id = ?",
    )
    .bind(item_id)
    .fetch_optional(pool)
    .await
}

/// Items of sales warmed (or being warmed) that ended after `ended_after` (still active, or recently ended).
///
/// # Errors
/// The database failed.
pub(crate) async fn live_items(
    pool: &MySqlPool,
    ended_after: DateTime<Utc>,
) -> Result<Vec<LiveItem>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.sale_id, i.id AS item_id, i.shards, s.script_version, s.uid AS sale_uid FROM \
         sale_items i JOIN sales s ON s.id = i.sale_id WHERE s.status <> ? AND s.ends_at > ? ORDER BY i.id",
    )
    .bind(STATUS_CREATED)
    .bind(ended_after)
    .fetch_all(pool)
    .await
}

/// Ids of sales not yet warmed (or whose warming did not finish) whose start is before `starts_before` and that have not ended.
///
/// # Errors
/// The database failed.
pub(crate) async fn due_for_prewarm(
    pool: &MySqlPool,
    starts_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<u64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM sales WHERE status IN (?, ?) AND starts_at <= ? AND ends_at > ? ORDER BY starts_at",
    )
    .bind(STATUS_CREATED)
    .bind(STATUS_WARMING)
    .bind(starts_before)
    .bind(now)
    .fetch_all(pool)
    .await
}

/// Ids of sales warmed (or being warmed) that ended after `ended_after` (reconciliation's periodic set).
///
/// # Errors
/// The database failed.
pub(crate) async fn sales_to_reconcile(
    pool: &MySqlPool,
    ended_after: DateTime<Utc>,
) -> Result<Vec<u64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM sales WHERE status <> ? AND ends_at > ? ORDER BY id")
        .bind(STATUS_CREATED)
        .bind(ended_after)
        .fetch_all(pool)
        .await
}

/// Queued sales not yet ended (the waiting room's usher moves their queues).
///
/// # Errors
/// The database failed.
pub(crate) async fn queued_sales(
    pool: &MySqlPool,
    now: DateTime<Utc>,
) -> Result<Vec<SaleRecord>, sqlx::Error> {
    // The policy is written by this service as compact JSON, so the mode reads as this text.
    let ids: Vec<u64> = sqlx::query_scalar(
        "SELECT id FROM sales WHERE ends_at > ? AND admission LIKE '%\"mode\":\"queue\"%' \
         ORDER BY id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = get_sale(pool, id).await? {
            records.push(r);
        }
    }
    Ok(records)
}
