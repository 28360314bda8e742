//! Reading MySQL back in straight SQL.

use sqlx::MySqlPool;

/// Orders of an item in MySQL: (rows, persisted units, MySQL-side stock).
pub async fn mysql_figures(db: &MySqlPool, item: u64) -> (i64, i64, i64) {
    let (rows, units): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status IN ('pending_payment','paid') THEN quantity END),0) AS SIGNED) FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap();
    let stock: i64 =
        sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
            .bind(item)
            .fetch_one(db)
            .await
            .unwrap();
    (rows, units, stock)
}
