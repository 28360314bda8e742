//! A sale's reconciliation report and its readable table form.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::checks::Check;

/// What one run found for one sale.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SaleReport {
    /// Sale id.
    pub sale_id: u64,
    /// When the run happened.
    pub generated_at: DateTime<Utc>,
    /// True when every check of every item passed.
    pub ok: bool,
    /// Failing checks over all items.
    pub discrepancies: u32,
    /// Messages of the orders topic the consumer group has not committed; `null` when Kafka
    /// did not answer.
    pub kafka_consumer_lag: Option<i64>,
    /// True when this run was asked to repair.
    pub repair: bool,
    /// Ledger entries re-emitted to Kafka by repair.
    pub repaired: u32,
    /// Order ids re-emitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repaired_ids: Vec<String>,
    /// Why some missing entries were left for a human.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_repaired: Vec<String>,
    /// Per item.
    pub items: Vec<ItemReport>,
    /// How much the run compared.
    #[serde(default)]
    pub scope: ReportScope,
}

/// How much a run compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportScope {
    /// Every ledger entry against every order row: after the sale's end, and on demand.
    #[default]
    Full,
    /// Counters only, a few reads of Redis per item: the periodic pass while the sale is live.
    Counters,
}

/// Figures and checks of one item.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemReport {
    /// Item id.
    pub item_id: u64,
    /// SKU.
    pub sku: String,
    /// Units put on sale.
    pub initial_stock: i64,
    /// Redis remaining units (`null`: key missing or expired).
    pub redis_remaining: Option<i64>,
    /// Units in the Redis ledger.
    pub reserved_units: i64,
    /// Entries in the Redis ledger.
    pub ledger_entries: u64,
    /// Units held by MySQL orders (`pending_payment` and `paid`).
    pub persisted_units: i64,
    /// MySQL orders holding units.
    pub persisted_orders: u64,
    /// Orders waiting for payment.
    #[serde(default)]
    pub pending_orders: u64,
    /// Paid orders.
    #[serde(default)]
    pub paid_orders: u64,
    /// Cancelled orders.
    #[serde(default)]
    pub cancelled_orders: u64,
    /// Expired orders.
    #[serde(default)]
    pub expired_orders: u64,
    /// Rejected MySQL orders.
    pub rejected_orders: u64,
    /// Units cancelled and expired orders gave back (MySQL).
    #[serde(default)]
    pub released_units: i64,
    /// Units Redis took back (meta `released_units`).
    #[serde(default)]
    pub redis_released_units: i64,
    /// MySQL-side remaining units.
    pub mysql_stock: i64,
    /// The checks.
    pub checks: Vec<CheckOut>,
}

/// A check as stored (owned name, so reports deserialise).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckOut {
    /// Check name.
    pub name: String,
    /// Verdict.
    pub ok: bool,
    /// Figures.
    pub detail: String,
    /// Things wrong.
    pub count: u64,
    /// Ids to look at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_ids: Vec<String>,
}

impl From<Check> for CheckOut {
    fn from(c: Check) -> Self {
        Self {
            name: c.name.to_string(),
            ok: c.ok,
            detail: c.detail,
            count: c.count,
            sample_ids: c.sample_ids,
        }
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl SaleReport {
    /// A report with no item yet.
    pub(crate) fn empty(
        sale_id: u64,
        kafka_consumer_lag: Option<i64>,
        repair: bool,
        scope: ReportScope,
    ) -> Self {
        Self {
            sale_id,
            generated_at: Utc::now(),
            ok: true,
            discrepancies: 0,
            kafka_consumer_lag,
            repair,
            repaired: 0,
            repaired_ids: Vec::new(),
            not_repaired: Vec::new(),
            items: Vec::new(),
            scope,
        }
    }

    /// The failing checks in one line for a log, each as `item <id> <check>: <detail>`.
    pub(crate) fn failing_summary(&self) -> String {
        let failing: Vec<String> = self
            .items
            .iter()
            .flat_map(|i| {
                i.checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(move |c| format!("item {} {}: {}", i.item_id, c.name, c.detail))
            })
            .collect();
        failing.join("; ")
    }

    /// The report as a table for terminals.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Reconciliation of sale {} at {}{} — {}",
            self.sale_id,
            self.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            match self.scope {
                ReportScope::Full => "",
                ReportScope::Counters => " (counters only: the sale is live)",
            },
            if self.ok {
                "ALL CHECKS OK".to_string()
            } else {
                format!("{} DISCREPANCIES", self.discrepancies)
            }
        );
        let _ = writeln!(out, "Kafka consumer lag: {}", opt(self.kafka_consumer_lag));
        let _ = writeln!(
            out,
            "\n{:>8} {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
            "item",
            "sku",
            "initial",
            "redis",
            "reserved",
            "persisted",
            "orders",
            "rejected",
            "mysql"
        );
        for i in &self.items {
            let _ = writeln!(
                out,
                "{:>8} {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
                i.item_id,
                truncate(&i.sku, 12),
                i.initial_stock,
                opt(i.redis_remaining),
                i.reserved_units,
                i.persisted_units,
                i.persisted_orders,
                i.rejected_orders,
                i.mysql_stock
            );
        }
        for i in &self.items {
            let _ = writeln!(
                out,
                "\nitem {}: pending {}, paid {}, cancelled {}, expired {}; units released {} (MySQL) / {} (Redis)",
                i.item_id,
                i.pending_orders,
                i.paid_orders,
                i.cancelled_orders,
                i.expired_orders,
                i.released_units,
                i.redis_released_units
            );
            let _ = writeln!(out, "item {} checks:", i.item_id);
            for c in &i.checks {
                let _ = writeln!(
                    out,
                    "  {:<4} {:<24} {}",
                    if c.ok { "ok" } else { "FAIL" },
                    c.name,
                    c.detail
                );
                if !c.sample_ids.is_empty() {
                    let _ = writeln!(out, "       ids: {}", c.sample_ids.join(", "));
                }
            }
        }
        if self.repair {
            let _ = writeln!(out, "\nrepair: re-emitted {} ledger entries", self.repaired);
            for reason in &self.not_repaired {
                let _ = writeln!(out, "  left for a human: {reason}");
            }
        }
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64, checks: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "item_id": id, "sku": "s", "initial_stock": 10, "redis_remaining": 4,
            "reserved_units": 6, "ledger_entries": 6, "persisted_units": 6, "persisted_orders": 6,
            "pending_orders": 6, "paid_orders": 0, "cancelled_orders": 0, "expired_orders": 0,
            "rejected_orders": 0, "released_units": 0, "redis_released_units": 0,
            "mysql_stock": 4, "checks": checks
        })
    }

    #[test]
    fn the_failing_summary_names_each_failing_check_with_its_item_and_figures() {
        let report: SaleReport = serde_json::from_value(serde_json::json!({
            "sale_id": 1, "generated_at": "2026-11-27T00:00:00Z", "ok": false,
            "discrepancies": 2, "kafka_consumer_lag": 0, "repair": false, "repaired": 0,
            "items": [
                item(7, serde_json::json!([
                    {"name": "stock_balance", "ok": true, "detail": "10 = 4 + 6", "count": 0},
                    {"name": "ledger_persisted", "ok": false, "detail": "2 entries missing", "count": 2}
                ])),
                item(8, serde_json::json!([
                    {"name": "no_oversell", "ok": false, "detail": "11 > 10", "count": 1}
                ]))
            ]
        }))
        .unwrap();
        assert_eq!(
            report.failing_summary(),
            "item 7 ledger_persisted: 2 entries missing; item 8 no_oversell: 11 > 10"
        );
        let ok: SaleReport = serde_json::from_value(serde_json::json!({
            "sale_id": 1, "generated_at": "2026-11-27T00:00:00Z", "ok": true,
            "discrepancies": 0, "kafka_consumer_lag": 0, "repair": false, "repaired": 0,
            "items": [item(7, serde_json::json!([
                {"name": "stock_balance", "ok": true, "detail": "10 = 4 + 6", "count": 0}
            ]))]
        }))
        .unwrap();
        assert_eq!(ok.failing_summary(), "");
    }
}
