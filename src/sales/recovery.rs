//! Rebuilding a started sale's Redis state from MySQL after Redis lost it.
//!
//! Warming a started sale again from its initial stock would sell every unit a second time, so
//! a sale whose state is gone after it may have sold (see [`needs_recovery`]) is rebuilt
//! instead, from what MySQL knows:
//!
//! 1. **Drain.** Orders reserved before the loss may still be on their way: in librdkafka's
//!    queues (for at most the producer's message timeout) and in Kafka (until the consumer has
//!    persisted them). The rebuild waits out the message timeout from the moment the loss was
//!    seen, then until the consumer group has no lag.
//! 2. **Rebuild,** fenced by a token (`prewarm` `restore_begin`): every order MySQL honoured
//!    becomes a ledger entry again, buyers' units are summed per user over the orders that hold
//!    units, closed orders (cancelled, expired) are recorded as released with their units,
//!    idempotency keys come back from the orders, and the stock is MySQL's remaining units.
//!    Buys answer RECOVERING meanwhile, and a rebuild that lost its token can write nothing
//!    more.
//!
//! What the rebuild cannot bring back is a reservation that never reached Kafka (in `ledger` or
//! `replica` confirmation mode, the tail the producer had not delivered); `kafka` mode confirms a
//! buy only once the broker has it, so nothing confirmed is missing (docs/ARCHITECTURE.md).

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sqlx::MySqlPool;
use tokio::{sync::mpsc, time::Instant};
use uuid::Uuid;

use crate::{
    domain::order_reserved::OrderReserved,
    observe::log::{REPEAT_EVERY, Throttle},
    sales::error::{Refusal, SaleError},
    stock::{
        PrewarmItem, PrewarmMode, PrewarmOutcome, RestoreTarget, StockService,
        compact::CompactEntry,
    },
    stores::{
        kafka::{KafkaEndpoint, lag::LagProbe},
        mysql::{
            orders,
            sales::{ItemRow, STATUS_CREATED, SaleRow},
        },
    },
};

/// Field/value pairs per restore call: a few hundred entries run in well under a millisecond.
const CHUNK: usize = 500;
/// How often the drain is checked.
const DRAIN_POLL: Duration = Duration::from_millis(500);
/// A sale counts as started this long before its start: Redis's clock, which the scripts
/// use, may run ahead of this process's.
const CLOCK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// True when a sale's lost Redis state must be rebuilt from MySQL rather than warmed afresh: it
/// was (or was being) written to Redis, and the sale may have sold already.
pub fn needs_recovery(sale: &SaleRow, now: DateTime<Utc>) -> bool {
    sale.status != STATUS_CREATED && now + CLOCK_MARGIN >= sale.starts_at
}

/// Waits for the drain and rebuilds items.
#[derive(Clone)]
pub struct Recovery {
    db: MySqlPool,
    stock: StockService,
    kafka: KafkaEndpoint,
    topic: String,
    group: String,
    settle: Duration,
}

/// The drain did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StillDraining {
    /// Messages the consumer group had not committed at the last look (`None`: Kafka did not
    /// answer).
    pub lag: Option<i64>,
}

impl Recovery {
    /// A recovery over these stores; `settle` is how long orders may still reach Kafka after
    /// a loss (the producer's message timeout, plus a margin).
    pub fn new(
        db: MySqlPool,
        stock: StockService,
        kafka: KafkaEndpoint,
        topic: &str,
        group: &str,
        settle: Duration,
    ) -> Self {
        Self {
            db,
            stock,
            kafka,
            topic: topic.to_string(),
            group: group.to_string(),
            settle,
        }
    }

    /// Waits until orders reserved before `seen_at` can no longer arrive and the consumer has
    /// persisted everything in Kafka, or until `deadline` (`None`: as long as it takes, logging
    /// progress).
    ///
    /// # Errors
    /// The deadline passed first.
    pub async fn drain(
        &self,
        sale_id: u64,
        seen_at: Instant,
        deadline: Option<Instant>,
    ) -> Result<(), StillDraining> {
        let probe = {
            let (kafka, topic, group) =
                (self.kafka.clone(), self.topic.clone(), self.group.clone());
            tokio::task::spawn_blocking(move || LagProbe::new(&kafka, &topic, &group).map(Arc::new))
                .await
                .map_err(|_| StillDraining { lag: None })?
                .map_err(|_| StillDraining { lag: None })?
        };
        let throttle = Throttle::default();
        loop {
            let lag = if seen_at.elapsed() >= self.settle {
                let p = probe.clone();
                tokio::task::spawn_blocking(move || p.total())
                    .await
                    .ok()
                    .and_then(Result::ok)
            } else {
                None
            };
            if lag == Some(0) {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(StillDraining { lag });
            }
            if throttle.allow("drain", REPEAT_EVERY).is_some() {
                tracing::info!(
                    sale_id,
                    lag,
                    "recovery waits for the consumer to persist what Kafka holds before rebuilding Redis from MySQL"
                );
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// Rebuilds one item's state from MySQL, expiring at `expire_at`. Returns the units left
    /// on sale, or `None` when the item turned out to be warmed already (another instance
    /// finished first).
    ///
    /// # Errors
    /// The keys hold another sale's state, another rebuild took over, or a store failed.
    pub async fn rebuild_item(
        &self,
        sale: &SaleRow,
        item: &ItemRow,
        expire_at: DateTime<Utc>,
    ) -> Result<Option<i64>, SaleError> {
        let mut tx = self.db.begin().await?;
        let placed = orders::ledger_orders_in(&mut tx, item.id).await?;
        let remaining: (u32,) = sqlx::query_as("SELECT stock FROM sale_items WHERE id = ?")
            .bind(item.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let warm = PrewarmItem {
            sale_id: sale.id,
            item_id: item.id,
            stock: u64::from(remaining.0),
            per_user_limit: item.per_user_limit,
            price_cents: item.price_cents,
            starts_at_ms: sale.starts_at.timestamp_millis(),
            ends_at_ms: sale.ends_at.timestamp_millis(),
            expire_at_ms: expire_at.timestamp_millis(),
            script_version: sale.script_version.clone(),
            sale_uid: sale.uid.clone(),
            initial_stock: u64::from(item.initial_stock),
        };
        let token = Uuid::new_v4().simple().to_string();
        match self
            .stock
            .prewarm_with_token(&warm, PrewarmMode::RestoreBegin, &token)
            .await?
        {
            PrewarmOutcome::RestoreBegun => {}
            PrewarmOutcome::AlreadyWarmed { .. } => return Ok(None),
            PrewarmOutcome::ForeignState => {
                return Err(SaleError::refused(
                    Refusal::ForeignState,
                    format!(
                        "item {}'s Redis keys hold another sale's state; nothing was written",
                        item.id
                    ),
                ));
            }
            other => return Err(unexpected(item.id, "restore_begin", &other)),
        }
        let compact = crate::domain::script_version::has_compact_ledger(&sale.script_version);
        let state = rebuilt_state(&placed, compact);
        for (target, pairs) in [
            (RestoreTarget::Ledger, state.ledger),
            (RestoreTarget::Buyers, state.buyers),
            (RestoreTarget::Idempotency, state.idem),
            (RestoreTarget::Released, state.released),
        ] {
            for chunk in pairs.chunks(CHUNK) {
                let written = self
                    .stock
                    .restore_chunk(
                        sale.id,
                        item.id,
                        &sale.script_version,
                        &token,
                        target,
                        chunk,
                    )
                    .await?;
                if !written {
                    return Err(superseded(item.id));
                }
            }
        }
        match self
            .stock
            .prewarm_with_token(&warm, PrewarmMode::RestoreEnd, &token)
            .await?
        {
            PrewarmOutcome::Restored { remaining } => {
                tracing::warn!(
                    sale_id = sale.id,
                    item_id = item.id,
                    orders = placed.len(),
                    remaining,
                    "item rebuilt in Redis from MySQL; it sells again"
                );
                Ok(Some(remaining))
            }
            PrewarmOutcome::NotRestoring => Err(superseded(item.id)),
            other => Err(unexpected(item.id, "restore_end", &other)),
        }
    }
}

/// Field/value pairs of one hash.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// An item's state rebuilt from its orders.
struct Rebuilt {
    ledger: Pairs,
    buyers: Pairs,
    idem: Pairs,
    released: Pairs,
}

/// The ledger, buyers, idempotency and released entries of the orders MySQL honoured: JSON
/// payloads and separate idempotency and released hashes before v5; with the `compact` ledger
/// (v5), compact entries under the orders' 16-byte ids that carry their key and release mark.
fn rebuilt_state(placed: &[orders::OrderRow], compact: bool) -> Rebuilt {
    let mut ledger = Vec::with_capacity(placed.len());
    let mut units: BTreeMap<&str, u64> = BTreeMap::new();
    let mut idem = Vec::new();
    let mut released = Vec::new();
    for o in placed {
        let holds = orders::holds_units(&o.status);
        if holds {
            *units.entry(o.user_id.as_str()).or_insert(0) += u64::from(o.quantity);
        }
        if compact {
            let entry = CompactEntry {
                quantity: o.quantity,
                reserved_at_ms: o.reserved_at.timestamp_millis(),
                idempotency_key: o.idempotency_key.clone(),
                user_id: o.user_id.clone(),
                released: !holds,
            };
            ledger.push((o.order_id.as_bytes().to_vec(), entry.encode().into_bytes()));
            continue;
        }
        let event = OrderReserved::new(
            o.order_id,
            o.sale_id,
            o.item_id,
            &o.user_id,
            o.quantity,
            o.price_cents,
            o.reserved_at.timestamp_millis(),
        )
        .with_idempotency_key(o.idempotency_key.as_deref());
        ledger.push((o.order_id.to_string().into_bytes(), event.to_bytes()));
        if !holds {
            released.push((
                o.order_id.to_string().into_bytes(),
                o.quantity.to_string().into_bytes(),
            ));
        }
        if let Some(key) = &o.idempotency_key {
            idem.push((
                format!("{}\0{key}", o.user_id).into_bytes(),
                format!("{} {}", o.order_id, o.quantity).into_bytes(),
            ));
        }
    }
    let buyers = units
        .into_iter()
        .map(|(user, n)| (user.as_bytes().to_vec(), n.to_string().into_bytes()))
        .collect();
    Rebuilt {
        ledger,
        buyers,
        idem,
        released,
    }
}

fn superseded(item_id: u64) -> SaleError {
    SaleError::refused(
        Refusal::RecoverySuperseded,
        format!("another rebuild of item {item_id} took over; it finishes the work"),
    )
}

fn unexpected(item_id: u64, step: &str, outcome: &PrewarmOutcome) -> SaleError {
    SaleError::Unexpected(format!(
        "rebuilding item {item_id}: {step} answered {outcome:?}"
    ))
}

/// Requests for background recoveries, from wherever a loss is seen (a buy that found no state,
/// a reconciliation), handled by the prewarm scheduler. A sale asked for while its recovery is
/// queued or running is not queued twice.
#[derive(Clone)]
pub struct Recoveries {
    tx: mpsc::UnboundedSender<(u64, Instant)>,
    queued: Arc<Mutex<HashSet<u64>>>,
}

impl Recoveries {
    /// A handle and the receiving end the scheduler serves.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<(u64, Instant)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                queued: Arc::default(),
            },
            rx,
        )
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `sale_id` to be recovered; a no-op while it is queued or running.
    pub fn request(&self, sale_id: u64) {
        if self.queued().insert(sale_id) {
            tracing::warn!(
                sale_id,
                "the sale's Redis state is missing after its start; rebuilding it from MySQL"
            );
            let _ = self.tx.send((sale_id, Instant::now()));
        }
    }

    /// Marks a recovery finished (or failed), so the next loss is recovered again.
    pub fn finished(&self, sale_id: u64) {
        self.queued().remove(&sale_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(user: &str, qty: u32, key: Option<&str>) -> orders::OrderRow {
        orders::OrderRow {
            order_id: Uuid::now_v7(),
            sale_id: 1,
            item_id: 2,
            user_id: user.into(),
            idempotency_key: key.map(Into::into),
            quantity: qty,
            price_cents: 100,
            status: orders::STATUS_PENDING.into(),
            reject_reason: None,
            reserved_at: Utc::now(),
            persisted_at: Utc::now(),
            expires_at: None,
            paid_at: None,
            payment_ref: None,
            paid_cents: None,
            closed_at: None,
            released_at: None,
        }
    }

    #[test]
    fn the_rebuilt_state_holds_every_order_the_units_held_the_keys_and_what_was_released() {
        let mut placed = [
            order("a", 1, Some("k1")),
            order("a", 2, None),
            order("b", 1, None),
            order("c", 2, None),
        ];
        placed[3].status = orders::STATUS_EXPIRED.into();
        let Rebuilt {
            ledger,
            buyers,
            idem,
            released,
        } = rebuilt_state(&placed, false);
        assert_eq!(ledger.len(), 4, "closed orders stay in the ledger");
        assert_eq!(
            released,
            [(placed[3].order_id.to_string().into_bytes(), b"2".to_vec())],
            "and are recorded as released"
        );
        let first = OrderReserved::parse(&ledger[0].1).unwrap();
        assert_eq!(first.order_id, placed[0].order_id);
        assert_eq!(first.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(
            buyers,
            [
                (b"a".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"1".to_vec())
            ]
        );
        assert_eq!(idem.len(), 1);
        assert_eq!(idem[0].0, b"a\0k1");
        assert_eq!(idem[0].1, format!("{} 1", placed[0].order_id).into_bytes());

        // The compact ledger (v5): entries under 16-byte ids carry the key and the release
        // mark; there is no idempotency or released hash.
        let compact = rebuilt_state(&placed, true);
        assert!(compact.idem.is_empty() && compact.released.is_empty());
        assert_eq!(compact.buyers, buyers);
        assert_eq!(compact.ledger.len(), 4);
        assert_eq!(compact.ledger[0].0, placed[0].order_id.as_bytes());
        let first = CompactEntry::decode(&compact.ledger[0].1).unwrap();
        assert_eq!(
            (
                first.quantity,
                first.idempotency_key.as_deref(),
                first.released
            ),
            (1, Some("k1"), false)
        );
        let expired = CompactEntry::decode(&compact.ledger[3].1).unwrap();
        assert_eq!((expired.quantity, expired.released), (2, true));
    }

    #[test]
    fn a_sale_needs_recovery_once_it_was_warmed_and_may_have_sold() {
        let now = Utc::now();
        let mut sale = SaleRow {
            id: 1,
            uid: "u".into(),
            name: "n".into(),
            starts_at: now - chrono::Duration::seconds(1),
            ends_at: now + chrono::Duration::hours(1),
            status: "warmed".into(),
            script_version: "v3".into(),
            warmed_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        assert!(needs_recovery(&sale, now));
        sale.status = STATUS_CREATED.into();
        assert!(!needs_recovery(&sale, now), "never written to Redis");
        sale.status = "warming".into();
        assert!(needs_recovery(&sale, now), "maybe written to Redis");
        sale.starts_at = now + chrono::Duration::minutes(5);
        assert!(!needs_recovery(&sale, now), "nothing can have sold yet");
    }
}
