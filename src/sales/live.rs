//! A sale watched live (the console, `curl -N` on the events route): every tick, the sale with
//! its Redis and MySQL figures, each item's buy rate over the last seconds and when it sold
//! out, the consumer lag, the outbox backlog, and the latest reconciliation report with the
//! history of reports.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::MySqlPool;

use super::{SaleAdmin, view::SaleView};
use crate::{
    sales::error::SaleError,
    stores::{
        kafka::lag::LagCache,
        mysql::{orders, reports},
    },
};

/// Span over which an item's buy rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Reports listed in the history.
const HISTORY: u32 = 20;

/// Builds live views; shared by every watcher.
#[derive(Clone)]
pub struct LiveFeed {
    admin: SaleAdmin,
    db: MySqlPool,
    lag: Arc<LagCache>,
}

/// One tick of a watched sale.
#[derive(Debug, Serialize)]
pub struct LiveSnapshot {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The sale with each item's Redis and MySQL figures (as `GET /admin/v1/sales/{id}`).
    pub sale: SaleView,
    /// What only a watcher knows: rates and sell-out times, by item.
    pub items: Vec<LiveItem>,
    /// Messages of the orders topic not yet committed by the consumers (`null`: Kafka did not
    /// answer).
    pub consumer_lag: Option<i64>,
    /// Reservations of this sale waiting for a Kafka acknowledgement.
    pub outbox_backlog: u64,
    /// The latest reconciliation report, as stored.
    pub report: Option<serde_json::Value>,
    /// The newest reports, newest first.
    pub history: Vec<reports::ReportSummary>,
}

/// An item's figures over time.
#[derive(Debug, Serialize)]
pub struct LiveItem {
    /// Item id.
    pub item_id: u64,
    /// Reservations per second over the last few seconds of watching.
    pub buy_rate_per_sec: f64,
    /// When the unit that sold it out was reserved (`null` while units remain).
    pub sold_out_at: Option<DateTime<Utc>>,
}

/// One watcher's state: the samples its rates come from.
pub struct LiveWatch {
    feed: LiveFeed,
    sale_id: u64,
    samples: HashMap<u64, VecDeque<(Instant, u64)>>,
    sold_out: HashMap<u64, Option<DateTime<Utc>>>,
}

impl LiveFeed {
    /// A feed over the admin's views, the database and a shared lag cache.
    pub fn new(admin: SaleAdmin, db: MySqlPool, lag: Arc<LagCache>) -> Self {
        Self { admin, db, lag }
    }

    /// Starts watching a sale.
    ///
    /// # Errors
    /// No such sale, or MySQL failed.
    pub async fn watch(&self, sale_id: u64) -> Result<LiveWatch, SaleError> {
        self.admin.view(sale_id).await?;
        Ok(LiveWatch {
            feed: self.clone(),
            sale_id,
            samples: HashMap::new(),
            sold_out: HashMap::new(),
        })
    }
}

impl LiveWatch {
    /// The sale now.
    ///
    /// # Errors
    /// The sale disappeared, or MySQL failed.
    pub async fn next(&mut self) -> Result<LiveSnapshot, SaleError> {
        let feed = &self.feed;
        let sale = feed.admin.view(self.sale_id).await?;
        let now = Instant::now();
        let mut items = Vec::with_capacity(sale.items.len());
        let mut backlog = 0;
        for item in &sale.items {
            let id = item.item.id;
            backlog += item.undelivered.unwrap_or(0);
            let reservations = item.reservations.unwrap_or(0);
            let samples = self.samples.entry(id).or_default();
            samples.push_back((now, reservations));
            while samples
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
            {
                samples.pop_front();
            }
            let buy_rate_per_sec = match (samples.front(), samples.back()) {
                (Some((t0, r0)), Some((t1, r1))) if t1 > t0 => {
                    r1.saturating_sub(*r0) as f64 / t1.duration_since(*t0).as_secs_f64()
                }
                _ => 0.0,
            };
            let sold_out_at = if item.redis_remaining == Some(0) {
                match self.sold_out.get(&id) {
                    Some(Some(at)) => Some(*at),
                    _ => {
                        let at = orders::last_reserved_at(&feed.db, id).await?;
                        self.sold_out.insert(id, at);
                        at
                    }
                }
            } else {
                self.sold_out.remove(&id);
                None
            };
            items.push(LiveItem {
                item_id: id,
                buy_rate_per_sec,
                sold_out_at,
            });
        }
        let report = reports::latest_body(&feed.db, self.sale_id)
            .await?
            .and_then(|body| serde_json::from_str(&body).ok());
        let history = reports::history(&feed.db, self.sale_id, HISTORY).await?;
        Ok(LiveSnapshot {
            at: Utc::now(),
            sale,
            items,
            consumer_lag: feed.lag.total().await,
            outbox_backlog: backlog,
            report,
            history,
        })
    }
}
