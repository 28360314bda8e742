//! Reconciliation: reads each item of a sale from Redis (stock, ledger, buyers) and MySQL
//! (orders, stock), plus the consumer group's Kafka lag, runs the checks, stores the report,
//! and — only when asked — repairs what is safe to repair: ledger entries missing from MySQL
//! are re-emitted to Kafka (the consumer deduplicates by order id). Re-emitting is safe only
//! while the item's MySQL stock balances (`mysql_stock + persisted == initial`); otherwise the
//! entries stay listed for a human.

pub mod checks;
mod read;
pub mod report;

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::Settings,
    observe::metrics::Metrics,
    outbox::Outbox,
    sales::Recoveries,
    stock::{StockService, ledger::ItemLedger},
    stores::{
        kafka::{KafkaEndpoint, lag::consumer_lag},
        mysql::{
            orders, reports,
            sales::{self, ItemRow},
        },
        redis::lock::LeaderElection,
    },
};

use checks::{ItemFacts, LedgerEntry, OrderFact, RedisState, check_item, missing_in_mysql};
pub use report::{CheckOut, ItemReport, SaleReport};

/// What one item's Redis state read gave (empty when it was not read).
#[derive(Default)]
struct Read {
    stock: (Option<i64>, Option<i64>),
    released_total: (i64, i64),
    buyers: HashMap<String, i64>,
    ledger: Vec<LedgerEntry>,
    unreadable: Vec<String>,
    released: HashMap<Uuid, u32>,
}

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
        let mut report = SaleReport {
            sale_id,
            generated_at: Utc::now(),
            ok: true,
            discrepancies: 0,
            kafka_consumer_lag: lag,
            repair,
            repaired: 0,
            repaired_ids: Vec::new(),
            not_repaired: Vec::new(),
            items: Vec::new(),
        };
        let expire_ms = (record.sale.ends_at
            + chrono::Duration::seconds(self.settings.sale.grace_secs as i64))
        .timestamp_millis();
        for item in &record.items {
            let facts = self.gather(&record.sale, item, now_ms < expire_ms).await?;
            if facts.redis_state == RedisState::Lost && Utc::now() >= record.sale.starts_at {
                self.recoveries.request(sale_id);
            }
            let checks = check_item(&facts, now_ms, grace_ms);
            if repair {
                self.repair(item, &facts, &checks, now_ms, grace_ms, &mut report)
                    .await;
            }
            let failing = checks.iter().filter(|c| !c.ok).count() as u32;
            report.discrepancies += failing;
            report.items.push(ItemReport {
                item_id: item.id,
                sku: item.sku.clone(),
                initial_stock: facts.initial_stock,
                redis_remaining: facts.redis_remaining,
                reserved_units: facts.ledger.iter().map(|e| i64::from(e.quantity)).sum(),
                ledger_entries: facts.ledger.len() as u64,
                persisted_units: held_units(&facts),
                persisted_orders: count(&facts, orders::holds_units),
                pending_orders: count(&facts, |s| s == orders::STATUS_PENDING),
                paid_orders: count(&facts, |s| s == orders::STATUS_PAID),
                cancelled_orders: count(&facts, |s| s == orders::STATUS_CANCELLED),
                expired_orders: count(&facts, |s| s == orders::STATUS_EXPIRED),
                rejected_orders: count(&facts, |s| s == orders::STATUS_REJECTED),
                released_units: facts
                    .orders
                    .iter()
                    .filter(|o| orders::released_units(&o.status))
                    .map(|o| i64::from(o.quantity))
                    .sum(),
                redis_released_units: facts.redis_released_before,
                mysql_stock: facts.mysql_stock,
                checks: checks.into_iter().map(CheckOut::from).collect(),
            });
        }
        report.ok = report.discrepancies == 0;
        let body = serde_json::to_string(&report).expect("a report serialises");
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
        Ok(report)
    }

    async fn kafka_lag(&self) -> Option<i64> {
        let endpoint = self.kafka.clone();
        let topic = self.settings.kafka.topic.clone();
        let group = self.settings.kafka.group_id.clone();
        let lag =
            tokio::task::spawn_blocking(move || consumer_lag(&endpoint, &topic, &group)).await;
        match lag {
            Ok(Ok(lag)) => {
                self.metrics.consumer.lag.set(lag);
                Some(lag)
            }
            Ok(Err(e)) => {
                tracing::warn!(error.message = %e, "consumer lag unavailable");
                None
            }
            Err(_) => None,
        }
    }

    /// Reads one item from both stores.
    async fn gather(
        &self,
        sale: &sales::SaleRow,
        item: &ItemRow,
        keys_should_live: bool,
    ) -> Result<ItemFacts, ReconcileError> {
        let keys = self.stock.keys().item(item.sale_id, item.id);
        let mut conn = self.stock.redis().get();
        // MySQL first, then Redis: every order MySQL holds then has its ledger entry in the
        // later Redis snapshot (ledger entries are never removed), so a buy landing between
        // the two reads cannot look like an orphan.
        let mut shared = read::Interner::default();
        let mut order_facts = Vec::new();
        let mut tx = self.db.begin().await?;
        orders::each_item_order_in(&mut tx, item.id, |o| {
            order_facts.push(OrderFact {
                order_id: o.order_id,
                user_id: shared.get(&o.user_id),
                quantity: o.quantity,
                status: shared.get(&o.status),
                reserved_at_ms: o.reserved_at.timestamp_millis(),
                released: o.released_at.is_some(),
            });
        })
        .await?;
        order_facts.shrink_to_fit();
        let fresh: (u32,) = sqlx::query_as("SELECT stock FROM sale_items WHERE id = ?")
            .bind(item.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        // Redis without blocking it (a sale's ledger can hold millions of entries): stock,
        // then buyers, then the ledger in HSCAN pages, then stock again. The checks know the
        // order of these reads (see `checks`), so buys landing meanwhile cause no false alarm.
        let state = self
            .stock
            .state(item.sale_id, item.id)
            .await
            .map_err(|e| match e {
                crate::stock::StockError::Redis(e) => ReconcileError::Redis(e),
                other => ReconcileError::Redis(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "reading meta",
                    other.to_string(),
                ))),
            })?;
        let redis_state = match (&state.sale_uid, state.present, state.restoring) {
            (Some(uid), _, _) if *uid != sale.uid => RedisState::Foreign,
            (_, _, true) => RedisState::Rebuilding,
            (_, true, false) => RedisState::Present,
            (_, false, _) if keys_should_live && sale.status != sales::STATUS_CREATED => {
                RedisState::Lost
            }
            (_, false, _) => RedisState::Expired,
        };
        // Only this sale's complete state is read and compared with MySQL.
        let ledger_available = redis_state == RedisState::Present;
        let mut read = Read::default();
        if ledger_available {
            // Stock and released total in one atomic read on each side of the ledger (see
            // `checks::redis_side::stock_balance`).
            let stock_and_released = redis::pipe()
                .atomic()
                .get(&keys.stock)
                .hget(&keys.meta, "released_units")
                .to_owned();
            let (before, released_before): (Option<i64>, Option<i64>) =
                stock_and_released.query_async(&mut conn).await?;
            let ledger = ItemLedger::open(&mut conn, keys.clone(), item.sale_id, item.id).await?;
            if ledger.is_compact() {
                let compact = read::compact(&mut conn, &ledger, &mut shared).await?;
                read.buyers = compact.buyers;
                read.ledger = compact.ledger;
                read.unreadable = compact.unreadable;
                read.released = compact.released;
            } else {
                read.buyers = read::hscan_all(&mut conn, &keys.buyers).await?;
                (read.ledger, read.unreadable) =
                    read::ledger(&mut conn, &keys.ledger, &mut shared).await?;
                read.released = read::hscan_all::<u32>(&mut conn, &keys.released)
                    .await?
                    .into_iter()
                    .filter_map(|(id, units)| Some((Uuid::parse_str(&id).ok()?, units)))
                    .collect();
            }
            let (after, released_after): (Option<i64>, Option<i64>) =
                stock_and_released.query_async(&mut conn).await?;
            read.stock = (before, after);
            read.released_total = (released_before.unwrap_or(0), released_after.unwrap_or(0));
        }
        let Read {
            stock: (redis_remaining, redis_remaining_after),
            released_total,
            buyers,
            ledger,
            unreadable,
            released,
        } = read;
        let facts = ItemFacts {
            initial_stock: i64::from(item.initial_stock),
            per_user_limit: i64::from(item.per_user_limit),
            mysql_stock: i64::from(fresh.0),
            redis_remaining,
            redis_remaining_after,
            ledger,
            unreadable_ledger: unreadable,
            buyers,
            orders: order_facts,
            redis_released_before: released_total.0,
            redis_released_after: released_total.1,
            released,
            ledger_available,
            redis_state,
        };
        Ok(facts)
    }

    #[allow(clippy::too_many_arguments)]
    async fn repair(
        &self,
        item: &ItemRow,
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
                item.id,
                missing.len()
            ));
            return;
        }
        let keys = self.stock.keys().item(item.sale_id, item.id);
        let mut conn = self.stock.redis().get();
        let payloads = async {
            let ledger = ItemLedger::open(&mut conn, keys, item.sale_id, item.id).await?;
            read::payloads(&mut conn, &ledger, &missing).await
        };
        let payloads = match payloads.await {
            Ok(p) => p,
            Err(e) => {
                report.not_repaired.push(format!(
                    "item {}: {} ledger entries missing from MySQL, but reading their payloads failed: {e}",
                    item.id,
                    missing.len()
                ));
                return;
            }
        };
        for (id, payload) in payloads {
            match self
                .outbox
                .deliver(item.sale_id, item.id, id, &payload)
                .await
            {
                Ok(()) => {
                    report.repaired += 1;
                    report.repaired_ids.push(id.to_string());
                    tracing::info!(order_id = %id, item_id = item.id, "repair: ledger entry re-emitted to Kafka");
                }
                Err(e) => report
                    .not_repaired
                    .push(format!("order {id}: re-emit failed: {e}")),
            }
        }
    }

    /// Reconciles active and recently ended sales every `interval_secs` while this instance
    /// holds the reconcile lock, until `shutdown`. Never repairs.
    pub async fn run_periodically(self, mut leader: LeaderElection, shutdown: CancellationToken) {
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
                if let Err(e) = self.run_once(sale_id, false).await {
                    tracing::warn!(sale_id, error.message = %e, "periodic reconciliation failed");
                }
            }
        }
        leader.step_down().await;
    }
}
