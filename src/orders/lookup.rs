//! Where an order stands, for its buyer: `reserved` (in the Redis ledger, on its way to MySQL),
//! then in MySQL `pending_payment`, `paid`, `cancelled`, `expired` or `rejected`. A buyer sees
//! only their own orders; someone else's order id answers 404, exactly like an unknown one.

use std::{sync::Arc, time::Duration};

use crate::stock::ledger::ItemLedger;
use chrono::{DateTime, Utc};
use moka::future::Cache;
use serde::Serialize;
use sqlx::MySqlPool;
use uuid::Uuid;

use crate::{
    domain::{
        UserId,
        order_id::{self, LedgerScope},
        order_reserved::OrderReserved,
    },
    orders::error::OrderError,
    stock::StockService,
    stores::mysql::{
        orders,
        sales::{self, LiveItem},
    },
};

/// How long the list of items with live ledgers is reused.
const LIVE_ITEMS_TTL: Duration = Duration::from_secs(2);

/// An order as its buyer sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderStatusView {
    /// Order id.
    pub order_id: Uuid,
    /// `reserved`, `pending_payment`, `paid`, `cancelled`, `expired` or `rejected`.
    pub status: String,
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Units.
    pub quantity: u32,
    /// Cents per unit.
    pub price_cents: u64,
    /// When it was reserved.
    pub reserved_at: Option<DateTime<Utc>>,
    /// When MySQL stored it.
    pub persisted_at: Option<DateTime<Utc>>,
    /// When it expires unless paid (once persisted; `null` for sales without payment windows).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was cancelled or expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Why MySQL rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
}

impl From<orders::OrderRow> for OrderStatusView {
    fn from(row: orders::OrderRow) -> Self {
        Self {
            order_id: row.order_id,
            status: row.status,
            sale_id: row.sale_id,
            item_id: row.item_id,
            quantity: row.quantity,
            price_cents: row.price_cents,
            reserved_at: Some(row.reserved_at),
            persisted_at: Some(row.persisted_at),
            expires_at: row.expires_at,
            paid_at: row.paid_at,
            closed_at: row.closed_at,
            reject_reason: row.reject_reason,
        }
    }
}

/// Finds orders in MySQL, then in the ledgers of live items.
#[derive(Clone)]
pub struct OrderLookup {
    db: MySqlPool,
    stock: StockService,
    grace: chrono::Duration,
    live: Cache<(), Arc<Vec<LiveItem>>>,
}

impl OrderLookup {
    /// A lookup over these stores; ledgers of sales ended more than `grace` ago are not searched.
    pub fn new(db: MySqlPool, stock: StockService, grace: chrono::Duration) -> Self {
        Self {
            db,
            stock,
            grace,
            live: Cache::builder().time_to_live(LIVE_ITEMS_TTL).build(),
        }
    }

    /// The order `order_id` if it belongs to `user`.
    ///
    /// # Errors
    /// 404 when unknown or someone else's; store failures.
    pub async fn find(&self, order_id: Uuid, user: &UserId) -> Result<OrderStatusView, OrderError> {
        if !order_id::could_be_users(order_id, user.as_ref(), Utc::now()) {
            return Err(OrderError::NotFound);
        }
        if let Some(row) = orders::get_order(&self.db, order_id).await? {
            if row.user_id != user.as_ref() {
                return Err(OrderError::NotFound);
            }
            return Ok(row.into());
        }
        let Some(event) = self.in_ledger(order_id).await? else {
            return Err(OrderError::NotFound);
        };
        if event.user_id != user.as_ref() {
            return Err(OrderError::NotFound);
        }
        Ok(OrderStatusView {
            order_id,
            status: "reserved".into(),
            sale_id: event.sale_id,
            item_id: event.item_id,
            quantity: event.quantity,
            price_cents: event.price_cents,
            reserved_at: DateTime::from_timestamp_millis(event.reserved_at_ms),
            persisted_at: None,
            expires_at: None,
            paid_at: None,
            closed_at: None,
            reject_reason: None,
        })
    }

    /// The reservation `order_id` in the ledger of a live item, if one holds it (reserved,
    /// perhaps not in MySQL yet). Only the items the id can belong to are read: the one its
    /// tag names, every live one for an id derived from an idempotency key, none for an id of
    /// an earlier release (see [`order_id::ledger_scope`]).
    ///
    /// # Errors
    /// A store failed.
    pub(crate) async fn in_ledger(
        &self,
        order_id: Uuid,
    ) -> Result<Option<OrderReserved>, OrderError> {
        let scope = order_id::ledger_scope(&order_id);
        if scope == LedgerScope::Nowhere {
            return Ok(None);
        }
        let db = self.db.clone();
        let since = Utc::now() - self.grace;
        let items = self
            .live
            .try_get_with((), async move {
                sales::live_items(&db, since).await.map(Arc::new)
            })
            .await
            .map_err(OrderError::LiveItems)?;
        // One concurrent lookup per live item (they live in different slots, so not one
        // command); a random id costs two round trips of latency (meta, then the entry), not
        // two per item.
        let lookups = items.iter().filter(|item| match scope {
            LedgerScope::Tagged(tag) => order_id::item_tag(item.item_id) == tag,
            LedgerScope::Every | LedgerScope::Nowhere => true,
        });
        let lookups = lookups.map(|item| {
            let keys = crate::stock::ItemRef::from(item).order_keys(self.stock.keys(), &order_id);
            let mut conn = self.stock.redis().get();
            async move {
                let ledger = ItemLedger::open(&mut conn, keys, item.sale_id, item.item_id).await?;
                let raw = ledger.raw(&mut conn, &[order_id]).await?.pop().flatten();
                Ok::<_, redis::RedisError>(raw.map(|raw| (ledger, raw)))
            }
        });
        for found in futures::future::join_all(lookups).await {
            let Some((ledger, raw)) = found.map_err(crate::stock::StockError::from)? else {
                continue;
            };
            let event = ledger
                .event(order_id, &raw)
                .ok_or(OrderError::UnreadableEntry(order_id))?;
            return Ok(Some(event));
        }
        Ok(None)
    }

    /// One page of `user`'s orders in MySQL, newest first (see [`OrderQuery`]); the cursor of
    /// the next page, if there may be one.
    ///
    /// # Errors
    /// MySQL failed.
    pub async fn list(
        &self,
        user: &UserId,
        query: &OrderQuery,
    ) -> Result<(Vec<OrderStatusView>, Option<Uuid>), OrderError> {
        let rows = crate::stores::mysql::lifecycle::list_for_user(
            &self.db,
            user.as_ref(),
            query.sale_id,
            query.status.as_deref(),
            query.cursor,
            query.limit,
        )
        .await?;
        let next = (rows.len() as u32 == query.limit)
            .then(|| rows.last().map(|r| r.order_id))
            .flatten();
        Ok((rows.into_iter().map(Into::into).collect(), next))
    }
}

/// A validated `GET /api/v1/orders` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// Only this sale's orders.
    pub sale_id: Option<u64>,
    /// Only orders in this state.
    pub status: Option<String>,
    /// Orders older than this one (the previous page's `next_cursor`).
    pub cursor: Option<Uuid>,
    /// Page size, 1..=100.
    pub limit: u32,
}

/// States an order in MySQL can be in.
pub(crate) const ORDER_STATES: &[&str] = &[
    orders::STATUS_PENDING,
    orders::STATUS_PAID,
    orders::STATUS_CANCELLED,
    orders::STATUS_EXPIRED,
    orders::STATUS_REJECTED,
];
