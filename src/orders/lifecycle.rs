//! The order lifecycle after persistence: a reservation is a hold with a payment window.
//!
//! `pending_payment` then exactly one of `paid` (the provider's notification), `cancelled` (the
//! buyer) or `expired` (the window passed; a leader-elected job). Cancelled and expired orders
//! give their units back, each exactly once: to MySQL's stock in the transaction that closes
//! them (`store::lifecycle`), then to Redis by `release.v4` (recorded per order, so asking twice
//! changes nothing), then every instance drops its sold-out flag for the item so the units sell
//! at once. A crash between the MySQL commit and the Redis release leaves `released_at` empty;
//! the expiry job's sweep finishes it. Lifecycle events go to Kafka through a MySQL outbox
//! (`events`).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{OrderError, lookup::OrderLookup};
use crate::{
    observe::{
        log::{REPEAT_EVERY, Throttle},
        metrics::Metrics,
    },
    sales::invalidation::RELEASED_PREFIX,
    stock::{ItemRef, ReleaseOutcome, StockService},
    stores::{
        mysql::{
            lifecycle::{self, Transition, Unreleased},
            orders::OrderRow,
        },
        redis::lock::LeaderElection,
    },
};

/// Closed orders whose release the sweep retries per pass.
const SWEEP_BATCH: u32 = 1_000;

/// A payment provider's notification.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentNotice {
    /// The order paid.
    pub order_id: Uuid,
    /// Cents paid.
    pub amount_cents: u64,
    /// The provider's reference of the payment.
    pub provider_ref: String,
}

/// Most orders the expiry job closes in one transaction: large enough that a hot item's row lock
/// is taken once per thousand orders, small enough that the transaction stays short.
pub(crate) const EXPIRY_BATCH: u32 = 1_000;

/// Longest provider reference stored.
pub(crate) const MAX_PROVIDER_REF: usize = 128;

/// Pay, cancel, expire, release.
#[derive(Clone)]
pub struct Lifecycle {
    db: MySqlPool,
    stock: StockService,
    metrics: Arc<Metrics>,
    batch: u32,
    /// Where an order MySQL does not have yet is looked for (the reservation may be on its
    /// way); without it such an order is unknown.
    lookup: Option<OrderLookup>,
}

impl Lifecycle {
    /// The lifecycle over these stores; the expiry job closes up to `batch` orders per
    /// transaction.
    pub fn new(db: MySqlPool, stock: StockService, metrics: Arc<Metrics>, batch: u32) -> Self {
        Self {
            db,
            stock,
            metrics,
            batch,
            lookup: None,
        }
    }

    /// The same lifecycle, telling an order on its way to MySQL (`NotPersisted`) from an
    /// unknown one.
    pub(crate) fn looking_up(self, lookup: OrderLookup) -> Self {
        Self {
            lookup: Some(lookup),
            ..self
        }
    }

    /// `NotPersisted` when `order_id` is reserved in a live item's ledger (seen by `user`, when
    /// named), else `NotFound`.
    async fn not_in_mysql(&self, order_id: Uuid, user: Option<&str>) -> OrderError {
        let Some(lookup) = &self.lookup else {
            return OrderError::NotFound;
        };
        let found = match user {
            Some(user) => match crate::domain::UserId::parse(user) {
                Ok(user) => lookup.find(order_id, &user).await.map(|_| true),
                Err(_) => Ok(false),
            },
            None => lookup.in_ledger(order_id).await.map(|e| e.is_some()),
        };
        match found {
            Ok(true) => OrderError::NotPersisted,
            Ok(false) => OrderError::NotFound,
            Err(e) => e,
        }
    }

    /// Applies a payment notification. A repeat of the same payment answers as the first.
    ///
    /// # Errors
    /// Unknown order, paid by another payment, closed (cancelled, expired, rejected, or its
    /// window passed: it is expired now), the wrong amount, or MySQL failed.
    pub async fn pay(&self, notice: &PaymentNotice) -> Result<OrderRow, OrderError> {
        let now = Utc::now();
        let result = lifecycle::pay(
            &self.db,
            notice.order_id,
            notice.amount_cents,
            &notice.provider_ref,
            now,
        )
        .await?;
        let transition = match result {
            Ok(t) => t,
            Err(expected) => return Err(OrderError::WrongAmount { expected }),
        };
        let outcome = |o: &str| self.metrics.orders.payments.with_label_values(&[o]).inc();
        match transition {
            Transition::Done(order) => {
                outcome("paid");
                tracing::info!(order_id = %order.order_id, item_id = order.item_id, "order paid");
                Ok(order)
            }
            Transition::Same(order) => {
                outcome("repeat");
                Ok(order)
            }
            Transition::Refused(order)
                if order.status == crate::stores::mysql::orders::STATUS_PAID =>
            {
                outcome("already_paid");
                Err(OrderError::AlreadyPaid(Box::new(order)))
            }
            Transition::Refused(order) => {
                outcome("closed");
                Err(OrderError::Closed(Box::new(order)))
            }
            Transition::ExpiredInstead(order) => {
                outcome("too_late");
                self.observe_closed(&order, "expired");
                self.release_ids(&[order.order_id]).await;
                Err(OrderError::Closed(Box::new(order)))
            }
            Transition::Missing | Transition::Unsupported => {
                Err(self.not_in_mysql(notice.order_id, None).await)
            }
        }
    }

    /// Cancels a buyer's order; cancelling twice answers as the first time. Its units go back.
    ///
    /// # Errors
    /// Unknown (or someone else's), paid, closed, a sale before v4, or MySQL failed.
    pub async fn cancel(&self, order_id: Uuid, user_id: &str) -> Result<OrderRow, OrderError> {
        match lifecycle::cancel(&self.db, order_id, user_id, Utc::now()).await? {
            Transition::Done(order) => {
                tracing::info!(%order_id, item_id = order.item_id, "order cancelled by its buyer");
                self.observe_closed(&order, "cancelled");
                self.release_ids(&[order_id]).await;
                Ok(order)
            }
            Transition::Same(order) => Ok(order),
            Transition::Refused(order)
                if order.status == crate::stores::mysql::orders::STATUS_PAID =>
            {
                Err(OrderError::AlreadyPaid(Box::new(order)))
            }
            Transition::Refused(order) | Transition::ExpiredInstead(order) => {
                Err(OrderError::Closed(Box::new(order)))
            }
            Transition::Missing => Err(self.not_in_mysql(order_id, Some(user_id)).await),
            Transition::Unsupported => Err(OrderError::CancelUnsupported),
        }
    }

    fn observe_closed(&self, order: &OrderRow, status: &str) {
        self.metrics
            .orders
            .closed
            .with_label_values(&[status])
            .inc();
        if let (Some(due), Some(closed)) = (order.expires_at, order.closed_at)
            && status == "expired"
        {
            let late = (closed - due).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics.orders.expiry_lateness.observe(late);
        }
    }

    /// Expires one batch of due orders and gives their units back; returns how many expired.
    ///
    /// # Errors
    /// MySQL failed (nothing expired).
    pub async fn expire_once(&self) -> Result<usize, sqlx::Error> {
        let expired = self.expire_batch().await?;
        let n = expired.len();
        self.release(expired).await;
        Ok(n)
    }

    /// Expires due orders batch after batch until fewer than a batch were due, giving one
    /// batch's units back in Redis while the next batch expires in MySQL (their orders differ,
    /// and the release takes no row lock); returns how many expired.
    ///
    /// # Errors
    /// MySQL failed; what expired before stays expired and released.
    pub async fn expire_all_due(&self) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        let mut releasing: Option<tokio::task::JoinHandle<usize>> = None;
        let result = loop {
            let expired = match self.expire_batch().await {
                Ok(e) => e,
                Err(e) => break Err(e),
            };
            let n = expired.len();
            total += n;
            if let Some(previous) = releasing.take() {
                let _ = previous.await;
            }
            if n > 0 {
                let me = self.clone();
                releasing = Some(tokio::spawn(async move { me.release(expired).await }));
            }
            if n < self.batch as usize {
                break Ok(total);
            }
        };
        if let Some(last) = releasing {
            let _ = last.await;
        }
        result
    }

    /// Expires one batch in MySQL (no Redis yet), observing the lateness.
    async fn expire_batch(&self) -> Result<Vec<Unreleased>, sqlx::Error> {
        let now = Utc::now();
        let expired = lifecycle::expire_due(&self.db, now, self.batch).await?;
        for o in &expired {
            self.metrics
                .orders
                .closed
                .with_label_values(&["expired"])
                .inc();
            if let Some(due) = o.expires_at {
                let late = (now - due).num_milliseconds().max(0) as f64 / 1000.0;
                self.metrics.orders.expiry_lateness.observe(late);
            }
        }
        Ok(expired)
    }

    /// Retries the Redis release of closed orders that still owe it; returns how many settled.
    ///
    /// # Errors
    /// MySQL failed.
    pub async fn sweep_once(&self) -> Result<usize, sqlx::Error> {
        let owed = lifecycle::unreleased(&self.db, SWEEP_BATCH).await?;
        Ok(self.release(owed).await)
    }

    async fn release_ids(&self, ids: &[Uuid]) {
        match lifecycle::unreleased_of(&self.db, ids).await {
            Ok(owed) => {
                self.release(owed).await;
            }
            Err(e) => tracing::warn!(error.message = %e, "release deferred to the sweep"),
        }
    }

    /// Gives the units of `closed` back in Redis (one call per item), records what settled,
    /// and tells every instance that the items have units again. Returns how many settled;
    /// the rest stay owed for the sweep.
    async fn release(&self, closed: Vec<Unreleased>) -> usize {
        let mut by_item: BTreeMap<ItemRef, Vec<Unreleased>> = BTreeMap::new();
        for o in closed {
            let item = ItemRef {
                sale_id: o.sale_id,
                item_id: o.item_id,
                shards: o.shards,
                uid: crate::stock::key_uid(&o.script_version, &o.sale_uid),
            };
            by_item.entry(item).or_default().push(o);
        }
        let mut settled_total = 0;
        for (item, orders) in by_item {
            let item_id = item.item_id;
            let first = &orders[0];
            let ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
            let outcomes = match self
                .stock
                .release(item, &first.script_version, &first.sale_uid, &ids)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(item_id, orders = ids.len(), error.message = %e, "Redis release failed; the sweep retries it");
                    continue;
                }
            };
            let settled: Vec<Uuid> = ids
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| o.settled())
                .map(|(id, _)| *id)
                .collect();
            let freed: u32 = outcomes
                .iter()
                .map(|o| match o {
                    ReleaseOutcome::Released { units } => *units,
                    _ => 0,
                })
                .sum();
            self.metrics.orders.units_released.inc_by(u64::from(freed));
            if outcomes.contains(&ReleaseOutcome::ForeignState) {
                tracing::error!(
                    item_id,
                    "release refused: the item's Redis keys hold another sale's state"
                );
            }
            if let Err(e) = lifecycle::mark_released(&self.db, &settled, Utc::now()).await {
                tracing::warn!(item_id, error.message = %e, "release done in Redis, not yet recorded; the sweep asks again (a no-op)");
                continue;
            }
            settled_total += settled.len();
            if freed > 0 {
                self.announce_units_back(item_id).await;
            }
        }
        settled_total
    }

    /// Tells every instance (itself included) to drop the item's sold-out flag.
    async fn announce_units_back(&self, item_id: u64) {
        let channel = self.stock.keys().sale_invalidations();
        let mut conn = self.stock.redis().get();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(format!("{RELEASED_PREFIX}{item_id}"))
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!(item_id, error.message = %e, "units are back, but the sold-out flags were not told; they lapse within their recheck interval");
        }
    }

    /// Expires due orders and sweeps owed releases every `interval` while this instance
    /// holds the expiry lock, until `shutdown`.
    pub(crate) async fn run_expiry(
        self,
        interval: Duration,
        mut leader: LeaderElection,
        shutdown: CancellationToken,
    ) {
        let throttle = Throttle::default();
        while leader.next_turn(interval, &shutdown).await {
            match self.expire_all_due().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(expired = n, "orders expired"),
                Err(e) => {
                    if let Some(held) = throttle.allow("expire", REPEAT_EVERY) {
                        tracing::warn!(error.message = %e, repeats_since_last = held, "expiry pass failed; retrying");
                    }
                }
            }
            if let Err(e) = self.sweep_once().await
                && let Some(held) = throttle.allow("sweep", REPEAT_EVERY)
            {
                tracing::warn!(error.message = %e, repeats_since_last = held, "release sweep failed; retrying");
            }
        }
        leader.step_down().await;
    }
}
