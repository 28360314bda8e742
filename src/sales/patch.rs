//! Changing a sale before it starts: the change is checked against the stored sale, written to
//! MySQL and, for a warmed sale, to Redis inside the same transaction.

use chrono::{DateTime, Utc};

use super::{SaleAdmin, SaleView};
use crate::{
    domain::{FieldError, SalePatch, sale::check_window},
    sales::error::{Refusal, SaleError},
    stock::{PrewarmItem, PrewarmMode, PrewarmOutcome},
    stores::mysql::sales::{self, STATUS_WARMED, SaleRecord, SaleRow},
};

impl SaleAdmin {
    /// Applies a change made before the sale starts, if `expected_version` is current.
    ///
    /// # Errors
    /// 404, 409 (stale version, started, stock locked), 422, or a store failure (nothing
    /// changed).
    pub async fn patch(
        &self,
        id: u64,
        expected_version: u32,
        patch: SalePatch,
    ) -> Result<SaleView, SaleError> {
        // The prewarm lock too: a prewarm running meanwhile would write the old values to
        // Redis and mark the sale warmed after this change was committed.
        let guard = self.prewarm_lock(id).await?;
        let result = self.patch_locked(id, expected_version, patch).await;
        self.release_prewarm_lock(id, &guard).await;
        result
    }

    async fn patch_locked(
        &self,
        id: u64,
        expected_version: u32,
        patch: SalePatch,
    ) -> Result<SaleView, SaleError> {
        let mut tx = self.db.begin().await?;
        let record = sales::lock_sale(&mut tx, id)
            .await?
            .ok_or(SaleError::NotFound)?;
        let sale = &record.sale;
        let now = Utc::now();
        check_changeable(sale, expected_version, now)?;
        let starts_at = patch.starts_at.unwrap_or(sale.starts_at);
        let ends_at = patch.ends_at.unwrap_or(sale.ends_at);
        check_window(starts_at, ends_at, now)?;
        check_items(&record, &patch)?;
        let admission = patch.admission.as_ref().unwrap_or(&sale.admission);
        admission.check_start(starts_at)?;
        let name = patch.name.clone().unwrap_or_else(|| sale.name.clone());
        let changed = sales::Changed {
            name: &name,
            starts_at,
            ends_at,
            admission,
        };
        sales::apply_patch(&mut tx, sale, &changed, &patch.items).await?;
        if sale.status == STATUS_WARMED {
            // Redis first, inside the MySQL transaction: if Redis fails, MySQL keeps the old
            // values. Items already refreshed keep the new ones (they sit in different slots,
            // so no single step covers them all); retrying the PATCH makes both agree.
            self.refresh_warmed(&record, &patch, starts_at, ends_at)
                .await?;
        }
        tx.commit().await?;
        for item in &record.items {
            self.catalog.forget(item.id).await;
        }
        tracing::info!(sale_id = id, version = expected_version + 1, "sale changed");
        self.notify(id).await;
        self.view(id).await
    }

    /// Writes the changed terms of every item of a warmed sale to Redis (its stock stays).
    async fn refresh_warmed(
        &self,
        record: &SaleRecord,
        patch: &SalePatch,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Result<(), SaleError> {
        let sale = &record.sale;
        for item in &record.items {
            let p = patch.items.iter().find(|p| p.id == item.id);
            let warm = PrewarmItem {
                sale_id: sale.id,
                item_id: item.id,
                stock: u64::from(item.stock),
                per_user_limit: p
                    .and_then(|p| p.per_user_limit)
                    .unwrap_or(item.per_user_limit),
                price_cents: p.and_then(|p| p.price_cents).unwrap_or(item.price_cents),
                starts_at_ms: starts_at.timestamp_millis(),
                ends_at_ms: ends_at.timestamp_millis(),
                expire_at_ms: self.expiry_of(ends_at).timestamp_millis(),
                script_version: sale.script_version.clone(),
                sale_uid: sale.uid.clone(),
                initial_stock: u64::from(item.initial_stock),
                shards: item.shards,
            };
            match self.stock.prewarm(&warm, PrewarmMode::Refresh).await? {
                PrewarmOutcome::Refreshed { .. } => {}
                other => {
                    return Err(SaleError::Unexpected(format!(
                        "refreshing item {} in Redis answered {other:?}",
                        item.id
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The sale is at the version the client read and has not started.
fn check_changeable(
    sale: &SaleRow,
    expected_version: u32,
    now: DateTime<Utc>,
) -> Result<(), SaleError> {
    if sale.version != expected_version {
        return Err(SaleError::refused(
            Refusal::VersionConflict,
            format!(
                "the sale is at version {}, not {expected_version}; read it again",
                sale.version
            ),
        ));
    }
    if now >= sale.starts_at {
        return Err(SaleError::refused(
            Refusal::Started,
            "a sale can only be changed before it starts",
        ));
    }
    Ok(())
}

/// Every changed item belongs to the sale, and no stock changes once the sale is warmed.
fn check_items(record: &SaleRecord, patch: &SalePatch) -> Result<(), SaleError> {
    let sale = &record.sale;
    for (i, item) in patch.items.iter().enumerate() {
        if !record.items.iter().any(|r| r.id == item.id) {
            return Err(FieldError::new(
                format!("items[{i}].id"),
                format!("item {} is not part of sale {}", item.id, sale.id),
            )
            .into());
        }
        if item.stock.is_some() && sale.status == STATUS_WARMED {
            return Err(SaleError::refused(
                Refusal::StockLocked,
                "stock cannot change once the sale is warmed",
            ));
        }
    }
    Ok(())
}
