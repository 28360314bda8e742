//! Reconciliation: reads each item of a sale from Redis (stock, ledger, buyers) and MySQL
//! (orders, stock), plus the consumer group's Kafka lag, runs the checks, stores the report,
//! and — only when asked — repairs what is safe to repair: ledger entries missing from MySQL
//! are re-emitted to Kafka (the consumer deduplicates by order id). Re-emitting is safe only
//! while the item's MySQL stock balances (`mysql_stock + persisted == initial`); otherwise the
//! entries stay listed for a human.

pub mod checks;
mod counters;
mod gather;
mod read;
mod repair;
pub mod report;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Settings,
    observe::metrics::Metrics,
    outbox::Outbox,
    sales::Recoveries,
    stock::StockService,
    stores::{
        kafka::KafkaEndpoint,
        mysql::{
            orders, reports,
            sales::{self, ItemRow},
        },
        redis::lock::LeaderElection,
    },
};

use checks::{Check, ItemFacts, RedisState, check_item};
pub use report::{CheckOut, ItemReport, ReportScope, SaleReport};

fn held_units(facts: &ItemFacts) -> i64 {
    facts
        .orders
        .iter()
        .filter(|o| orders::holds_units(&o.status))
        .map(|o| i64::from(o.quantity))
        .sum()
}

fn count(facts: &ItemFacts, status: impl Fn(&str) -> bool) -> u64 {
    facts.orders.iter().filter(|o| status(&o.status)).count() as u64
}

/// Failures of a run (not discrepancies: those are in the report).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// No such sale.
    #[error("sale {0} not found")]
    UnknownSale(u64),
    /// MySQL failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Runs reconciliation.
#[derive(Clone)]
pub struct Reconciler {
    db: MySqlPool,
    stock: StockService,
    kafka: KafkaEndpoint,
    outbox: Outbox,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    recoveries: Recoveries,
}

impl Reconciler {
    /// A reconciler over these stores; a sale found with lost Redis state is reported to
    /// `recoveries`.
    pub fn new(
        db: MySqlPool,
        stock: StockService,
        kafka: KafkaEndpoint,
        outbox: Outbox,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        recoveries: Recoveries,
    ) -> Self {
        Self {
            db,
            stock,
            kafka,
            outbox,
            settings,
            metrics,
            recoveries,
        }
    }

    /// Reconciles one sale, repairing if `repair`, and stores the report.
    ///
    /// # Errors
    /// Unknown sale, or a store failed while reading.
    pub async fn run_once(&self, sale_id: u64, repair: bool) -> Result<SaleReport, ReconcileError> {
        let record = sales::get_sale(&self.db, sale_id)
            .await?
            .ok_or(ReconcileError::UnknownSale(sale_id))?;
        let now_ms = Utc::now().timestamp_millis();
        let grace_ms = self.settings.reconcile.ledger_grace_secs as i64 * 1000;
        let lag = self.kafka_lag().await;
        let mut report = SaleReport::empty(sale_id, lag, repair, ReportScope::Full);
        let expire_ms = (record.sale.ends_at
            + chrono::Duration::seconds(self.settings.sale.grace_secs as i64))
        .timestamp_millis();
        for item in &record.items {
            self.reconcile_item(
                &record.sale,
                item,
                now_ms < expire_ms,
                now_ms,
                grace_ms,
                &mut report,
            )
            .await?;
        }
        report.ok = report.discrepancies == 0;
        self.publish(&report).await?;
        Ok(report)
    }

    /// Reads, checks and (when the report asks for it) repairs one item, adding it to the
    /// report; a sale found with lost Redis state after its start is asked to be recovered.
    async fn reconcile_item(
        &self,
        sale: &sales::SaleRow,
        item: &ItemRow,
        keys_should_live: bool,
        now_ms: i64,
        grace_ms: i64,
        report: &mut SaleReport,
    ) -> Result<(), ReconcileError> {
        let facts = self.gather(sale, item, keys_should_live).await?;
        if facts.redis_state == RedisState::Lost && Utc::now() >= sale.starts_at {
            self.recoveries.request(report.sale_id);
        }
        let checks = check_item(&facts, now_ms, grace_ms);
        if report.repair {
            let whole = crate::stock::ItemRef::of(sale, item);
            self.repair(whole, &facts, &checks, now_ms, grace_ms, report)
                .await;
        }
        let failing = checks.iter().filter(|c| !c.ok).count() as u32;
        report.discrepancies += failing;
        report.items.push(item_report(item, &facts, checks));
        Ok(())
    }

    /// Stores the report, sets the sale's discrepancy gauge and logs the outcome.
    async fn publish(&self, report: &SaleReport) -> Result<(), ReconcileError> {
        let sale_id = report.sale_id;
        let body = serde_json::to_string(report).expect("a report serialises");
        reports::insert(
            &self.db,
            sale_id,
            report.ok,
            report.discrepancies,
            report.repaired,
            &body,
        )
        .await?;
        self.metrics
            .reconcile
            .discrepancies
            .with_label_values(&[&sale_id.to_string()])
            .set(i64::from(report.discrepancies));
        if report.ok {
            tracing::info!(
                sale_id,
                repaired = report.repaired,
                "reconciliation: all checks ok"
            );
        } else {
            tracing::warn!(
                sale_id,
                discrepancies = report.discrepancies,
                repaired = report.repaired,
                failing = %report.failing_summary(),
                "reconciliation found discrepancies"
            );
        }
        Ok(())
    }

    /// Reconciles active and recently ended sales every `interval_secs` while this instance
    /// holds the reconcile lock, until `shutdown`: a live sale on counters only, an ended one
    /// in full. Never repairs.
    pub(crate) async fn run_periodically(
        self,
        mut leader: LeaderElection,
        shutdown: CancellationToken,
    ) {
        let interval = Duration::from_secs(self.settings.reconcile.interval_secs.max(1));
        while leader.next_turn(interval, &shutdown).await {
            let since = Utc::now()
                - chrono::Duration::seconds(self.settings.reconcile.ended_window_secs as i64);
            let sales = match sales::sales_to_reconcile(&self.db, since).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error.message = %e, "could not list sales to reconcile");
                    continue;
                }
            };
            for sale_id in sales {
                if let Err(e) = self.run_periodic(sale_id).await {
                    tracing::warn!(sale_id, error.message = %e, "periodic reconciliation failed");
                }
            }
        }
        leader.step_down().await;
    }
}

/// One item's line of the report: its figures on each side and its checks.
fn item_report(item: &ItemRow, facts: &ItemFacts, checks: Vec<Check>) -> ItemReport {
    ItemReport {
        item_id: item.id,
        sku: item.sku.clone(),
        initial_stock: facts.initial_stock,
        redis_remaining: facts.redis_remaining,
        reserved_units: facts.ledger.iter().map(|e| i64::from(e.quantity)).sum(),
        ledger_entries: facts.ledger.len() as u64,
        persisted_units: held_units(facts),
        persisted_orders: count(facts, orders::holds_units),
        pending_orders: count(facts, |s| s == orders::STATUS_PENDING),
        paid_orders: count(facts, |s| s == orders::STATUS_PAID),
        cancelled_orders: count(facts, |s| s == orders::STATUS_CANCELLED),
        expired_orders: count(facts, |s| s == orders::STATUS_EXPIRED),
        rejected_orders: count(facts, |s| s == orders::STATUS_REJECTED),
        released_units: facts
            .orders
            .iter()
            .filter(|o| orders::released_units(&o.status))
            .map(|o| i64::from(o.quantity))
            .sum(),
        redis_released_units: facts.redis_released_before,
        mysql_stock: facts.mysql_stock,
        checks: checks.into_iter().map(CheckOut::from).collect(),
    }
}
