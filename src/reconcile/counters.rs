//! The periodic pass over a live sale: counters only (see [`super::checks::counters`]). A full
//! pass reads every ledger entry from the same Redis core that serves the sale's buyers (about
//! 5.7 s of work for 250,000 entries), so while the sale is live the periodic job reads a few
//! counters per item instead, and compares order by order after the end and on demand.

use chrono::{DateTime, Utc};

use super::{
    ItemReport, ReconcileError, Reconciler, ReportScope, SaleReport,
    checks::{
        Check, RedisState,
        counters::{CounterFacts, check_counters},
    },
    gather::redis_state,
};
use crate::{
    stock::{ItemRef, ItemState},
    stores::{
        mysql::{
            orders,
            sales::{self, ItemRow, SaleRecord},
        },
        redis::keys::ItemKeys,
    },
};

impl Reconciler {
    /// The periodic job's pass over one sale: counters only while it is live, in full after
    /// its end.
    ///
    /// # Errors
    /// Unknown sale, or a store failed while reading.
    pub(crate) async fn run_periodic(&self, sale_id: u64) -> Result<SaleReport, ReconcileError> {
        let record = sales::get_sale(&self.db, sale_id)
            .await?
            .ok_or(ReconcileError::UnknownSale(sale_id))?;
        let now = Utc::now();
        if now < record.sale.ends_at {
            self.run_counters(&record, now).await
        } else {
            self.run_once(sale_id, false).await
        }
    }

    /// Reconciles a sale found live at `now` on counters only and stores the report, dated
    /// `now` (never repairs).
    async fn run_counters(
        &self,
        record: &SaleRecord,
        now: DateTime<Utc>,
    ) -> Result<SaleReport, ReconcileError> {
        let sale_id = record.sale.id;
        let lag = self.kafka_lag().await;
        let mut report = SaleReport::empty(sale_id, lag, false, ReportScope::Counters);
        report.generated_at = now;
        for item in &record.items {
            let facts = self.gather_counters(record, item).await?;
            if facts.redis_state == RedisState::Lost && Utc::now() >= record.sale.starts_at {
                self.recoveries.request(sale_id);
            }
            let checks = check_counters(&facts);
            report.discrepancies += checks.iter().filter(|c| !c.ok).count() as u32;
            report.items.push(counters_report(item, &facts, checks));
        }
        report.ok = report.discrepancies == 0;
        self.publish(&report).await?;
        Ok(report)
    }

    /// MySQL's totals and stock in one transaction, then Redis's counters in one atomic read.
    async fn gather_counters(
        &self,
        record: &SaleRecord,
        item: &ItemRow,
    ) -> Result<CounterFacts, ReconcileError> {
        let mut tx = self.db.begin().await?;
        let totals = orders::item_totals(&mut *tx, item.id).await?;
        let mysql_stock = sales::item_stock(&mut tx, item.id).await?;
        tx.commit().await?;
        // One atomic read of each holder's keys (one hash tag, so one slot on a Cluster):
        // its state and its counters cannot disagree. A sharded item's holders add up (see
        // `gather::Read::merge`).
        let mut sum = HolderCounters::default();
        let whole = ItemRef::of(&record.sale, item);
        for (n, holder) in whole.holders().into_iter().enumerate() {
            let keys = whole.keys(self.stock.keys(), holder);
            let part = self.holder_counters(&keys).await?;
            sum.add(part, n == 0);
        }
        let HolderCounters {
            state,
            remaining,
            released,
            entries,
        } = sum;
        // A live sale's keys should be there (its end + grace is still ahead).
        let redis_state = redis_state(&state, &record.sale, true);
        let present = redis_state == RedisState::Present;
        let facts = CounterFacts {
            initial_stock: i64::from(item.initial_stock),
            mysql_stock: i64::from(mysql_stock),
            totals,
            redis_remaining: remaining.filter(|_| present),
            redis_released: released.filter(|_| present).unwrap_or(0),
            // v5 counts its bucketed entries in meta; before, the ledger is one hash.
            redis_entries: if present { entries } else { 0 },
            redis_state,
        };
        Ok(facts)
    }
}

/// One holder's counters, or their sum over a sharded item's holders.
#[derive(Default)]
struct HolderCounters {
    state: ItemState,
    remaining: Option<i64>,
    released: Option<i64>,
    entries: u64,
}

impl HolderCounters {
    fn add(&mut self, part: HolderCounters, first: bool) {
        if first {
            *self = part;
            return;
        }
        self.state.present &= part.state.present;
        self.state.restoring |= part.state.restoring;
        self.state.retired_layout |= part.state.retired_layout;
        if part.state.sale_uid != self.state.sale_uid && part.state.sale_uid.is_some() {
            self.state.sale_uid = part.state.sale_uid;
        }
        self.remaining = self.remaining.zip(part.remaining).map(|(a, b)| a + b);
        self.released = Some(self.released.unwrap_or(0) + part.released.unwrap_or(0));
        self.entries += part.entries;
    }
}

impl Reconciler {
    /// One atomic read of a holder's counters.
    async fn holder_counters(&self, keys: &ItemKeys) -> Result<HolderCounters, ReconcileError> {
        let mut conn = self.stock.redis().get();
        type Read = (
            u64,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<u64>,
            u64,
            (Option<i64>, Option<i64>),
            bool,
        );
        let (
            meta_fields,
            sale_uid,
            restoring,
            remaining,
            released,
            entries,
            in_hash,
            moved,
            buckets,
        ): Read = redis::pipe()
            .atomic()
            .hlen(&keys.meta)
            .hget(&keys.meta, "sale_uid")
            .hget(&keys.meta, "restoring")
            .get(&keys.stock)
            .hget(&keys.meta, "released_units")
            .hget(&keys.meta, "entries")
            .hlen(&keys.ledger)
            .cmd("HMGET")
            .arg(&keys.meta)
            .arg("moved_out")
            .arg("moved_in")
            .hexists(&keys.meta, "buckets")
            .query_async(&mut conn)
            .await?;
        let (out, into) = moved;
        Ok(HolderCounters {
            state: ItemState {
                present: meta_fields > 0,
                sale_uid,
                restoring: restoring.is_some(),
                retired_layout: meta_fields > 0 && !buckets,
            },
            // Units moved out still count as this holder's, units moved in not (the sum over
            // the holders is then the item's).
            remaining: remaining.map(|r| r + out.unwrap_or(0) - into.unwrap_or(0)),
            released,
            // v5 counts its bucketed entries in meta; before, the ledger is one hash.
            entries: entries.unwrap_or(in_hash),
        })
    }
}

/// One item's line of a counters report.
fn counters_report(item: &ItemRow, facts: &CounterFacts, checks: Vec<Check>) -> ItemReport {
    let t = &facts.totals;
    ItemReport {
        item_id: item.id,
        sku: item.sku.clone(),
        initial_stock: facts.initial_stock,
        redis_remaining: facts.redis_remaining,
        reserved_units: facts.redis_reserved_units().unwrap_or(0),
        ledger_entries: facts.redis_entries,
        persisted_units: t.persisted_units as i64,
        persisted_orders: t.persisted_orders,
        pending_orders: t.pending_orders,
        paid_orders: t.paid_orders,
        cancelled_orders: t.cancelled_orders,
        expired_orders: t.expired_orders,
        rejected_orders: t.rejected_orders,
        released_units: t.released_units as i64,
        redis_released_units: facts.redis_released,
        mysql_stock: facts.mysql_stock,
        checks: checks.into_iter().map(Into::into).collect(),
    }
}
