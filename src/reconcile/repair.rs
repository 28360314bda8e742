//! Repair, only when asked: ledger entries missing from MySQL are re-emitted to Kafka, and only
//! while the item's MySQL stock balances; otherwise they stay listed for a human.

use super::{
    Reconciler, SaleReport,
    checks::{self, ItemFacts, missing_in_mysql},
    read,
};
use crate::stock::{ItemRef, ledger::ItemLedger};

impl Reconciler {
    /// Re-emits the item's ledger entries missing from MySQL when that is safe, and notes in
    /// the report what was re-emitted and what was not.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn repair(
        &self,
        item: ItemRef,
        facts: &ItemFacts,
        checks: &[checks::Check],
        now_ms: i64,
        grace_ms: i64,
        report: &mut SaleReport,
    ) {
        let missing = missing_in_mysql(facts, now_ms, grace_ms);
        if missing.is_empty() {
            return;
        }
        let balanced = checks
            .iter()
            .any(|c| c.name == "mysql_stock_balance" && c.ok);
        if !balanced {
            report.not_repaired.push(format!(
                "item {}: {} ledger entries missing from MySQL, but its MySQL stock does not balance, so re-emitting could double-count; resolve by hand",
                item.item_id,
                missing.len()
            ));
            return;
        }
        let payloads = match self.payloads(item, &missing).await {
            Ok(p) => p,
            Err(e) => {
                report.not_repaired.push(format!(
                    "item {}: {} ledger entries missing from MySQL, but reading their payloads failed: {e}",
                    item.item_id,
                    missing.len()
                ));
                return;
            }
        };
        for (id, payload) in payloads {
            match self.outbox.deliver(item, id, &payload).await {
                Ok(()) => {
                    report.repaired += 1;
                    report.repaired_ids.push(id.to_string());
                    tracing::info!(order_id = %id, item_id = item.item_id, "repair: ledger entry re-emitted to Kafka");
                }
                Err(e) => report
                    .not_repaired
                    .push(format!("order {id}: re-emit failed: {e}")),
            }
        }
    }

    /// The ledger payloads of orders `ids`, each read from the holder that keeps it.
    async fn payloads(
        &self,
        item: ItemRef,
        ids: &[uuid::Uuid],
    ) -> redis::RedisResult<Vec<(uuid::Uuid, Vec<u8>)>> {
        let mut by_holder: std::collections::HashMap<_, Vec<uuid::Uuid>> = Default::default();
        for id in ids {
            by_holder
                .entry(crate::stock::order_holder(id, item.shards))
                .or_default()
                .push(*id);
        }
        let mut conn = self.stock.redis().get();
        let mut found = Vec::with_capacity(ids.len());
        for (holder, ids) in by_holder {
            let keys = item.keys(self.stock.keys(), holder);
            let ledger = ItemLedger::open(&mut conn, keys, item.sale_id, item.item_id).await?;
            found.extend(read::payloads(&mut conn, &ledger, &ids).await?);
        }
        Ok(found)
    }
}
