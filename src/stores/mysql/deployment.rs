//! This database's identity: one random uid, made by its migration and never changed.

use sqlx::MySqlPool;

/// The database's uid (32 hex characters).
///
/// # Errors
/// The query failed, or the table is missing (migrations not run).
pub async fn uid(pool: &MySqlPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT uid FROM deployment WHERE id = 1")
        .fetch_one(pool)
        .await
}
