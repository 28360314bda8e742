//! The outbox relay: re-emits reservations Kafka did not acknowledge in time, and counts what is
//! still waiting, while this instance holds the relay lock.

use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Outbox;
use crate::{
    config::{RelaySettings, SaleSettings},
    stock::{
        ItemRef,
        ledger::{ItemLedger, field_text, parse_order_id},
    },
    stores::{
        mysql::sales::{self, LiveItem},
        redis::{RedisConn, keys::ItemKeys, lock::LeaderElection},
    },
};

/// A move between a sharded item's holders pending this long lost its caller: the relay
/// gives it (younger ones are being given by the process that took them).
const SETTLE_AFTER: Duration = Duration::from_secs(5);

/// Most outbox entries re-emitted per item per relay pass.
const RELAY_BATCH: isize = 500;

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Items scanned.
    pub items: u64,
    /// Entries re-emitted and acknowledged.
    pub relayed: u64,
    /// Entries whose re-emission failed (left for the next pass).
    pub failed: u64,
    /// Entries still unacknowledged after the pass (all ages).
    pub backlog: u64,
    /// Entries held back because too few replicas acknowledged them (`replica` mode).
    pub unreplicated: u64,
    /// Age of the oldest entry still waiting after the pass, in milliseconds (0: none).
    pub oldest_age_ms: u64,
}

impl Outbox {
    /// Re-emits, for each item, outbox entries older than `older_than`.
    ///
    /// # Errors
    /// Redis failed while scanning.
    pub(crate) async fn relay_once(
        &self,
        items: &[LiveItem],
        older_than: Duration,
    ) -> anyhow::Result<RelayReport> {
        let mut report = RelayReport::default();
        let cutoff = Utc::now().timestamp_millis() - older_than.as_millis() as i64;
        for item in items {
            report.items += 1;
            self.relay_item(item, cutoff, &mut report).await?;
        }
        self.metrics.outbox.backlog.set(report.backlog as i64);
        self.metrics
            .outbox
            .oldest_age
            .set((report.oldest_age_ms / 1000) as i64);
        Ok(report)
    }

    /// One item's share of a pass: its entries queued by `cutoff` (milliseconds) sent again,
    /// unless replicas do not hold them yet, then its backlog counted.
    async fn relay_item(
        &self,
        item: &LiveItem,
        cutoff: i64,
        report: &mut RelayReport,
    ) -> anyhow::Result<()> {
        let item = ItemRef::from(item);
        if item.sharded() {
            // Moves between shards whose caller died halfway are given now.
            self.stock.settle_moves_of(item, SETTLE_AFTER).await?;
        }
        for holder in item.holders() {
            let keys = item.keys(self.stock.keys(), holder);
            self.relay_holder(item, &keys, cutoff, report).await?;
        }
        Ok(())
    }

    /// [`Outbox::relay_item`] for one holder of the item's stock.
    async fn relay_holder(
        &self,
        item: ItemRef,
        keys: &ItemKeys,
        cutoff: i64,
        report: &mut RelayReport,
    ) -> anyhow::Result<()> {
        let mut conn = self.stock.redis().get();
        let mut stale: Vec<Vec<u8>> = conn
            .zrangebyscore_limit(&keys.outbox, "-inf", cutoff, 0, RELAY_BATCH)
            .await?;
        // In `replica` mode an entry goes to Kafka only once replicas hold it: one the
        // master lost in a failover must leave nothing in Kafka that MySQL would count.
        if !stale.is_empty() && !self.stock.replicated(keys).await? {
            report.unreplicated += stale.len() as u64;
            stale.clear();
        }
        if !stale.is_empty() {
            let ids = parse_ids(&stale, report);
            let ledger =
                ItemLedger::open(&mut conn, keys.clone(), item.sale_id, item.item_id).await?;
            let payloads = ledger.payloads(&mut conn, &ids).await?;
            self.resend(item, ids, payloads, report).await;
        }
        count_backlog(&mut conn, &keys.outbox, report).await
    }

    /// Sends the entries `ids` again with their ledger `payloads`, all at once, and counts
    /// what was delivered and what failed (an entry without a ledger entry fails).
    async fn resend(
        &self,
        item: ItemRef,
        ids: Vec<Uuid>,
        payloads: Vec<Option<Vec<u8>>>,
        report: &mut RelayReport,
    ) {
        let mut sends = Vec::with_capacity(ids.len());
        for (order_id, payload) in ids.into_iter().zip(payloads) {
            let Some(payload) = payload else {
                tracing::error!(%order_id, item_id = item.item_id, "outbox entry without a ledger entry; left for reconciliation");
                report.failed += 1;
                continue;
            };
            sends.push(async move {
                let result = self.deliver(item, order_id, &payload).await;
                (order_id, result)
            });
        }
        // Concurrently: with Kafka down each send waits out the message timeout.
        let mut first_error = None;
        let mut failed = 0;
        for (order_id, result) in futures::future::join_all(sends).await {
            match result {
                Ok(()) => {
                    report.relayed += 1;
                    self.metrics.outbox.relayed.inc();
                }
                Err(e) => {
                    failed += 1;
                    tracing::debug!(%order_id, error.message = %e, "relay could not deliver");
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            report.failed += failed;
            tracing::warn!(item_id = item.item_id, failed, error.message = %e, "relay could not deliver these orders; the next pass retries them");
        }
    }

    /// Runs the relay every `relay.interval_ms` while this instance holds the relay lock,
    /// until `shutdown`.
    pub(crate) async fn run_relay(
        self,
        db: MySqlPool,
        relay: RelaySettings,
        sale: SaleSettings,
        mut leader: LeaderElection,
        shutdown: CancellationToken,
    ) {
        let interval = Duration::from_millis(relay.interval_ms);
        let older_than = Duration::from_millis(relay.redeliver_after_ms);
        while leader.next_turn(interval, &shutdown).await {
            let since = Utc::now() - chrono::Duration::seconds(sale.grace_secs as i64);
            let items = match sales::live_items(&db, since).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error.message = %e, "relay could not list live items");
                    continue;
                }
            };
            match self.relay_once(&items, older_than).await {
                Ok(r) if r.relayed > 0 || r.failed > 0 || r.unreplicated > 0 => {
                    tracing::info!(
                        relayed = r.relayed,
                        failed = r.failed,
                        held_until_replicated = r.unreplicated,
                        backlog = r.backlog,
                        "outbox relay pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error.message = %e, "outbox relay pass failed"),
            }
        }
        leader.step_down().await;
    }
}

/// The order ids of the outbox members `stale`; a malformed one is logged, counted as failed
/// and left in place.
fn parse_ids(stale: &[Vec<u8>], report: &mut RelayReport) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(stale.len());
    for member in stale {
        match parse_order_id(member) {
            Some(id) => ids.push(id),
            None => {
                tracing::error!(order_id = %field_text(member), "outbox holds a malformed order id; left for a human");
                report.failed += 1;
            }
        }
    }
    ids
}

/// Adds the entries still in `outbox` to the backlog and keeps the age of the oldest.
async fn count_backlog(
    conn: &mut RedisConn,
    outbox: &str,
    report: &mut RelayReport,
) -> anyhow::Result<()> {
    let backlog: u64 = conn.zcard(outbox).await?;
    report.backlog += backlog;
    if backlog > 0 {
        let oldest: Vec<(Vec<u8>, i64)> = conn.zrange_withscores(outbox, 0, 0).await?;
        if let Some((_, at_ms)) = oldest.first() {
            let age = Utc::now().timestamp_millis().saturating_sub(*at_ms).max(0) as u64;
            report.oldest_age_ms = report.oldest_age_ms.max(age);
        }
    }
    Ok(())
}
