//! Reading MySQL back in straight SQL: an item's orders, units, ids and statuses, its stock, and
//! the server's own counters.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, MySqlConnection, MySqlPool};
use uuid::Uuid;

/// Orders of an item in MySQL: (rows, persisted units, MySQL-side stock).
pub async fn mysql_figures(db: &MySqlPool, item: u64) -> (i64, i64, i64) {
    let (rows, units): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status IN ('pending_payment','paid') THEN quantity END),0) AS SIGNED) FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap();
    (rows, units, mysql_stock(db, item).await)
}

/// The item's remaining units as MySQL counts them.
pub async fn mysql_stock(db: &MySqlPool, item: u64) -> i64 {
    let sql = "SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?";
    sqlx::query_scalar(sql)
        .bind(item)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Rows MySQL holds for an item, whatever their status.
pub async fn order_rows(db: &MySqlPool, item: u64) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM orders WHERE item_id = ?";
    sqlx::query_scalar(sql).bind(item).fetch_one(db).await
}

/// Rows MySQL holds in all, whatever their item.
pub async fn all_orders(db: &MySqlPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(db)
        .await
}

/// Units of an item's orders, whatever their status.
pub async fn order_units(db: &MySqlPool, item: u64) -> Result<i64, sqlx::Error> {
    let sql = "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM orders WHERE item_id = ?";
    sqlx::query_scalar(sql).bind(item).fetch_one(db).await
}

/// The order ids MySQL holds for an item.
pub async fn order_ids(db: &MySqlPool, item: u64) -> Result<HashSet<String>, sqlx::Error> {
    let sql = "SELECT order_id FROM orders WHERE item_id = ?";
    let ids: Vec<Uuid> = sqlx::query_scalar(sql).bind(item).fetch_all(db).await?;
    Ok(ids.iter().map(Uuid::to_string).collect())
}

/// Each order of an item by id: its status.
pub async fn order_statuses(db: &MySqlPool, item: u64) -> HashMap<String, String> {
    let sql = "SELECT order_id, status FROM orders WHERE item_id = ?";
    let rows: Vec<(Uuid, String)> = sqlx::query_as(sql).bind(item).fetch_all(db).await.unwrap();
    rows.into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect()
}

/// MariaDB's own count of SELECT statements, server-wide.
pub async fn com_select(url: &str) -> u64 {
    let mut conn = MySqlConnection::connect(url).await.unwrap();
    let (_, n): (String, String) = sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Com_select'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n.parse().unwrap()
}

/// Deletes the order `id` behind the service's back (the drift reconciliation must find).
pub async fn delete_order(db: &MySqlPool, id: &str) {
    let sql = "DELETE FROM orders WHERE order_id = ?";
    let id = Uuid::parse_str(id).unwrap();
    sqlx::query(sql).bind(id).execute(db).await.unwrap();
}
