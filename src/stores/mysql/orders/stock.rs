//! The units orders take from their items' stock and give back, many items in one statement.

use std::collections::BTreeMap;

use sqlx::{MySql, QueryBuilder, Transaction};

/// Takes `units` (per item id) off the items' stock, in one statement; none when `units` is
/// empty. The item rows must be locked already.
///
/// # Errors
/// The database failed.
pub(crate) async fn take(
    tx: &mut Transaction<'_, MySql>,
    units: &BTreeMap<u64, u64>,
) -> Result<(), sqlx::Error> {
    shift(tx, "UPDATE sale_items SET stock = stock - CASE id", units).await
}

/// Gives `units` (per item id) back to the items' stock, in one statement; none when `units`
/// is empty. The item rows must be locked already.
///
/// # Errors
/// The database failed.
pub(crate) async fn give_back(
    tx: &mut Transaction<'_, MySql>,
    units: &BTreeMap<u64, u64>,
) -> Result<(), sqlx::Error> {
    shift(tx, "UPDATE sale_items SET stock = stock + CASE id", units).await
}

/// `head` (`... stock = stock ± CASE id`) with a `WHEN id THEN n` per item, bumping each row's
/// version.
async fn shift(
    tx: &mut Transaction<'_, MySql>,
    head: &'static str,
    units: &BTreeMap<u64, u64>,
) -> Result<(), sqlx::Error> {
    if units.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(head);
    for (id, n) in units {
        q.push(" WHEN ").push_bind(*id).push(" THEN ").push_bind(*n);
    }
    q.push(" END, version = version + 1 WHERE id IN (");
    let mut sep = q.separated(", ");
    for id in units.keys() {
        sep.push_bind(*id);
    }
    q.push(")");
    q.build().execute(&mut **tx).await?;
    Ok(())
}
