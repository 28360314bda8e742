//! Reconciliation reports: written after every run, read by operators.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::MySqlPool;

/// One stored report, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReportSummary {
    /// Report id.
    pub id: u64,
    /// Sale id.
    pub sale_id: u64,
    /// When it ran.
    pub created_at: DateTime<Utc>,
    /// True when every check passed.
    pub ok: bool,
    /// Failing checks.
    pub discrepancies: u32,
    /// Ledger entries re-emitted by repair.
    pub repaired: u32,
}

/// Stores a report; returns its id.
///
/// # Errors
/// The database failed.
pub async fn insert(
    pool: &MySqlPool,
    sale_id: u64,
    ok: bool,
    discrepancies: u32,
    repaired: u32,
    body: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO reconciliation_reports (sale_id, ok, discrepancies, repaired, report) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(sale_id)
    .bind(ok)
    .bind(discrepancies)
    .bind(repaired)
    .bind(body)
    .execute(pool)
    .await?;
    Ok(r.last_insert_id())
}

/// The newest report body of a sale.
///
/// # Errors
/// The database failed.
pub(crate) async fn latest_body(
    pool: &MySqlPool,
    sale_id: u64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT report FROM reconciliation_reports WHERE sale_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(sale_id)
    .fetch_optional(pool)
    .await
}

/// The newest `limit` report summaries of a sale.
///
/// # Errors
/// The database failed.
pub async fn history(
    pool: &MySqlPool,
    sale_id: u64,
    limit: u32,
) -> Result<Vec<ReportSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, sale_id, created_at, ok, discrepancies, repaired FROM reconciliation_reports \
         WHERE sale_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
    )
    .bind(sale_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
