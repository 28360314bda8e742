//! Reading the three stores for reconciliation: the consumer group's lag from Kafka, and for
//! each item its orders and stock from MySQL, then its state from Redis.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    ReconcileError, Reconciler,
    checks::{ItemFacts, LedgerEntry, OrderFact, RedisState},
    read::{self, Interner},
};
use crate::{
    stock::{ItemRef, ItemState, ledger::ItemLedger},
    stores::{
        kafka::lag::consumer_lag,
        mysql::{
            orders,
            sales::{self, ItemRow},
        },
        redis::{RedisConn, keys::ItemKeys},
    },
};

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

impl Read {
    /// Adds one holder's read to the item's (the first holder's read is the start); a
    /// stock missing on one holder is missing for the item.
    fn merge(&mut self, part: Read, first: bool) {
        let sum = |a: Option<i64>, b: Option<i64>| Some(a? + b?);
        self.stock = if first {
            part.stock
        } else {
            (
                sum(self.stock.0, part.stock.0),
                sum(self.stock.1, part.stock.1),
            )
        };
        self.released_total.0 += part.released_total.0;
        self.released_total.1 += part.released_total.1;
        self.buyers.extend(part.buyers);
        self.ledger.extend(part.ledger);
        self.unreadable.extend(part.unreadable);
        self.released.extend(part.released);
    }
}

impl Reconciler {
    /// The consumer group's lag (also set on its gauge); `None` when Kafka did not answer.
    pub(super) async fn kafka_lag(&self) -> Option<i64> {
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
    pub(super) async fn gather(
        &self,
        sale: &sales::SaleRow,
        item: &ItemRow,
        keys_should_live: bool,
    ) -> Result<ItemFacts, ReconcileError> {
        let mut conn = self.stock.redis().get();
        // MySQL first, then Redis: every order MySQL holds then has its ledger entry in the
        // later Redis snapshot (ledger entries are never removed), so a buy landing between
        // the two reads cannot look like an orphan.
        let mut shared = Interner::default();
        let (order_facts, mysql_stock) = self.read_mysql(item.id, &mut shared).await?;
        // Redis without blocking it (a sale's ledger can hold millions of entries): stock,
        // then buyers, then the ledger in HSCAN pages, then stock again. The checks know the
        // order of these reads (see `checks`), so buys landing meanwhile cause no false alarm.
        let whole = ItemRef::of(sale, item);
        let state = self.read_state(whole).await?;
        let redis_state = redis_state(&state, sale, keys_should_live);
        // Only this sale's complete state is read and compared with MySQL.
        let ledger_available = redis_state == RedisState::Present;
        let mut read = Read::default();
        if ledger_available {
            // A sharded item's holders one after the other: each keeps
            // `stock - released + moved_out - moved_in + its ledger` equal to what it started
            // with, so the sums obey the same bounds as one holder's figures.
            for (n, holder) in whole.holders().into_iter().enumerate() {
                let keys = whole.keys(self.stock.keys(), holder);
                let part = read_redis(&mut conn, &keys, item, &mut shared).await?;
                read.merge(part, n == 0);
            }
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
            mysql_stock: i64::from(mysql_stock),
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

    /// The item's orders and its stock, in one MySQL transaction.
    async fn read_mysql(
        &self,
        item_id: u64,
        shared: &mut Interner,
    ) -> Result<(Vec<OrderFact>, u32), ReconcileError> {
        let mut order_facts = Vec::new();
        let mut tx = self.db.begin().await?;
        orders::each_item_order_in(&mut tx, item_id, |o| {
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
        let fresh = sales::item_stock(&mut tx, item_id).await?;
        tx.commit().await?;
        Ok((order_facts, fresh))
    }

    /// The item's Redis meta: present, whose, rebuilding.
    async fn read_state(&self, item: ItemRef) -> Result<ItemState, ReconcileError> {
        self.stock.state(item).await.map_err(|e| match e {
            crate::stock::StockError::Redis(e) => ReconcileError::Redis(e),
            other => ReconcileError::Redis(redis::RedisError::from((
                redis::ErrorKind::Client,
                "reading meta",
                other.to_string(),
            ))),
        })
    }
}

/// What the item's Redis state is to this sale: its own and complete, being rebuilt, another
/// sale's, lost while its keys should live, or expired.
pub(super) fn redis_state(
    state: &ItemState,
    sale: &sales::SaleRow,
    keys_should_live: bool,
) -> RedisState {
    match (&state.sale_uid, state.present, state.restoring) {
        (Some(uid), _, _) if *uid != sale.uid => RedisState::Foreign,
        (_, _, true) => RedisState::Rebuilding,
        (_, true, false) if state.retired_layout => RedisState::Retired,
        (_, true, false) => RedisState::Present,
        (_, false, _) if keys_should_live && sale.status != sales::STATUS_CREATED => {
            RedisState::Lost
        }
        (_, false, _) => RedisState::Expired,
    }
}

/// The item's stock, buyers, ledger and released record, between two atomic reads of the stock
/// and released total.
async fn read_redis(
    conn: &mut RedisConn,
    keys: &ItemKeys,
    item: &ItemRow,
    shared: &mut Interner,
) -> Result<Read, ReconcileError> {
    let mut read = Read::default();
    // Stock and released total in one atomic read on each side of the ledger (see
    // `checks::redis_side::stock_balance`).
    // A sharded item's holder counts the units it moved out as still its own and those moved
    // in as not (see `Read::merge`); a whole item has neither.
    let stock_and_released = redis::pipe()
        .atomic()
        .get(&keys.stock)
        .hget(&keys.meta, "released_units")
        .hget(&keys.meta, "moved_out")
        .hget(&keys.meta, "moved_in")
        .to_owned();
    type Figures = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);
    let (before, released_before, out, into): Figures =
        stock_and_released.query_async(conn).await?;
    let before = before.map(|s| s + out.unwrap_or(0) - into.unwrap_or(0));
    let ledger = ItemLedger::open(conn, keys.clone(), item.sale_id, item.id).await?;
    if ledger.is_compact() {
        let compact = read::compact(conn, &ledger, shared).await?;
        read.buyers = compact.buyers;
        read.ledger = compact.ledger;
        read.unreadable = compact.unreadable;
        read.released = compact.released;
    } else {
        read.buyers = read::hscan_all(conn, &keys.buyers).await?;
        (read.ledger, read.unreadable) = read::ledger(conn, &keys.ledger, shared).await?;
        read.released = read::hscan_all::<u32>(conn, &keys.released)
            .await?
            .into_iter()
            .filter_map(|(id, units)| Some((Uuid::parse_str(&id).ok()?, units)))
            .collect();
    }
    let (after, released_after, out, into): Figures = stock_and_released.query_async(conn).await?;
    let after = after.map(|s| s + out.unwrap_or(0) - into.unwrap_or(0));
    read.stock = (before, after);
    read.released_total = (released_before.unwrap_or(0), released_after.unwrap_or(0));
    Ok(read)
}
