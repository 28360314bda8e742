//! The buy path: gates, then one atomic Lua call, then the order handed to the outbox.
//!
//! Order of work is cheapest first, all in memory until the script: the client address's
//! bucket (when on), the cached sale window, the local sold-out flag, then the buyer's token
//! and bucket, the instance's bucket, and only then Redis. Window and sold-out answers come
//! before authentication on purpose: they are public facts (the sale page shows them), and
//! after a sell-out they are the answer to almost every request, so they must cost as little as
//! a health check. The instance's bucket comes last, so that nobody can drain it with requests
//! that would be refused anyway (unknown items, no token): it meters real buyers only.
//!
//! When the 202 goes out depends on the confirmation mode (`SECKILL_BUY_CONFIRM`): after the
//! script (`ledger`), after Redis replicas acknowledged the batch (`replica`, the `WAIT` runs
//! in the stock layer), or after the Kafka broker acknowledged the order (`kafka`). A
//! reservation that was made but not confirmed in time is answered 503 `unconfirmed` with its
//! order id; it may stand, and a retry with the same idempotency key returns it.

mod error;
pub mod gate;
pub mod identify;
mod reserve;
pub mod waiting_room;

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    buy::{
        gate::{Gates, Rejected, SoldOutFlags},
        identify::Authenticator,
    },
    config::ConfirmMode,
    domain::{FieldError, IdempotencyKey, UserId},
    observe::{log::Throttle, metrics::Metrics},
    outbox::Outbox,
    sales::{Recoveries, catalog::Catalog},
    stock::StockService,
    stores::mysql::sales::ItemMeta,
};
use waiting_room::{AdmissionClaims, WaitingRoom};

pub use error::BuyError;
pub use reserve::BuyBody;

/// What a 202 waits for, beyond the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation {
    /// The mode (the replica wait itself is configured in the stock service).
    pub mode: ConfirmMode,
    /// Longest wait for the Kafka acknowledgement in `kafka` mode.
    pub timeout: Duration,
}

/// One validated buy request.
#[derive(Debug, Clone)]
pub struct BuyRequest<'a> {
    /// Sale id from the path.
    pub sale_id: u64,
    /// Item id from the path.
    pub item_id: u64,
    /// The `Authorization` header, verified only after the public gates.
    pub authorization: Option<&'a str>,
    /// The gateway's user header (trusted-header mode).
    pub trusted_user: Option<&'a str>,
    /// The client's idempotency key.
    pub idempotency_key: Option<&'a IdempotencyKey>,
    /// The client's address (per-IP bucket): the peer, or the client a trusted proxy names.
    pub client_ip: Option<IpAddr>,
    /// The connection's peer (a trusted proxy, in trusted-header mode).
    pub peer: Option<IpAddr>,
    /// The `X-Admission-Token` header (a queued sale's buys need one).
    pub admission: Option<&'a str>,
}

/// A successful buy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyAnswer {
    /// A new reservation.
    Reserved {
        /// The new order.
        order_id: Uuid,
        /// The buyer.
        user: UserId,
        /// Units reserved.
        quantity: u32,
    },
    /// A retry with the same idempotency key: the first answer again.
    Replayed {
        /// The order of the first attempt.
        order_id: Uuid,
        /// The buyer.
        user: UserId,
        /// Units the first attempt reserved.
        quantity: u32,
    },
}

#[derive(Clone)]
struct HotCounters {
    sold_out: prometheus::IntCounter,
    reserved: prometheus::IntCounter,
    flagged: prometheus::IntCounter,
}

/// Runs buys.
#[derive(Clone)]
pub struct BuyService {
    /// Counters of the two answers that dominate a sale, resolved once (a labelled lookup per
    /// request is measurable on this path).
    hot: HotCounters,
    auth: Arc<Authenticator>,
    gates: Arc<Gates>,
    catalog: Catalog,
    sold_out: Arc<SoldOutFlags>,
    stock: StockService,
    outbox: Outbox,
    confirmation: Confirmation,
    recoveries: Recoveries,
    queue: WaitingRoom,
    /// Another sale's state seen by every buy of an item would log once per buy.
    foreign: Arc<Throttle>,
    metrics: Arc<Metrics>,
}

/// What a buy service is built from.
pub struct BuyParts {
    /// Caller verification.
    pub auth: Arc<Authenticator>,
    /// Token buckets.
    pub gates: Arc<Gates>,
    /// Item metadata.
    pub catalog: Catalog,
    /// Local sold-out flags.
    pub sold_out: Arc<SoldOutFlags>,
    /// The stock scripts.
    pub stock: StockService,
    /// Delivery to Kafka.
    pub outbox: Outbox,
    /// What a 202 waits for.
    pub confirmation: Confirmation,
    /// Where a lost sale state is reported for recovery.
    pub recoveries: Recoveries,
    /// The waiting rooms (admission tokens, finished buyers).
    pub queue: WaitingRoom,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl BuyService {
    /// A buy service over these parts.
    pub fn new(parts: BuyParts) -> Self {
        let BuyParts {
            auth,
            gates,
            catalog,
            sold_out,
            stock,
            outbox,
            confirmation,
            recoveries,
            queue,
            metrics,
        } = parts;
        Self {
            hot: HotCounters {
                sold_out: metrics.buy.outcomes.with_label_values(&["sold_out"]),
                reserved: metrics.buy.outcomes.with_label_values(&["reserved"]),
                flagged: metrics
                    .buy
                    .gate_rejections
                    .with_label_values(&["sold_out_flag"]),
            },
            auth,
            gates,
            catalog,
            sold_out,
            stock,
            outbox,
            confirmation,
            recoveries,
            queue,
            foreign: Arc::default(),
            metrics,
        }
    }

    /// The token buckets (pruned by a background task).
    pub fn gates(&self) -> &Arc<Gates> {
        &self.gates
    }

    /// The local sold-out flags (cleared when units come back).
    pub(crate) fn sold_out_flags(&self) -> &Arc<SoldOutFlags> {
        &self.sold_out
    }

    /// Runs one buy and records its outcome and latency. `body` yields the request body,
    /// `{"quantity": n}` or empty for one unit; it is awaited only after the public gates, so
    /// a sold-out answer never waits for it (the server hands a body over in a later poll).
    /// The connection stays open: hyper drains an unread body that has arrived, and closes
    /// the connection only when it has not (still in transit, or `Expect: 100-continue`).
    ///
    /// # Errors
    /// Every refusal (rate limited, not started, sold out, ...) as a [`BuyError`].
    pub async fn buy(
        &self,
        req: BuyRequest<'_>,
        body: impl Future<Output = Result<Bytes, FieldError>>,
    ) -> Result<BuyAnswer, BuyError> {
        let mut started = None;
        let result = self.run(&req, body, &mut started).await;
        match &result {
            Ok(BuyAnswer::Reserved { .. }) => self.hot.reserved.inc(),
            Ok(BuyAnswer::Replayed { .. }) => self
                .metrics
                .buy
                .outcomes
                .with_label_values(&["replayed"])
                .inc(),
            Err(BuyError::SoldOut) => self.hot.sold_out.inc(),
            Err(e) => self
                .metrics
                .buy
                .outcomes
                .with_label_values(&[e.code()])
                .inc(),
        }
        // An answer from memory (before the body is read) took no measurable time: it is
        // recorded in the lowest bucket without reading the clock again.
        self.metrics
            .buy
            .latency
            .observe(started.map_or(0.0, |t: Instant| t.elapsed().as_secs_f64()));
        result
    }

    /// Gate, identify, reserve, confirm.
    async fn run(
        &self,
        req: &BuyRequest<'_>,
        body: impl Future<Output = Result<Bytes, FieldError>>,
        started: &mut Option<Instant>,
    ) -> Result<BuyAnswer, BuyError> {
        let gated = self.gate(req).await?;
        *started = Some(gated.clock);
        let quantity = reserve::parse_quantity(&body.await?)?;
        let user = self.identify(req).await?;
        let admitted = self.admitted(req, &gated, &user)?;
        self.past_refusal(&gated, &user, req).await?;
        if quantity > gated.meta.per_user_limit {
            return Err(FieldError::new(
                "quantity",
                format!("at most {} per user", gated.meta.per_user_limit),
            )
            .into());
        }
        let reserved = self.reserve(req, &gated, &user, quantity).await?;
        let answer = self.confirm(req, &gated, user, quantity, reserved).await?;
        if let (Some(claims), BuyAnswer::Reserved { .. }) = (&admitted, &answer) {
            let ends_at = gated.meta.ends_at.timestamp_millis();
            let meta = &gated.meta;
            let key_uid = crate::stock::key_uid(&meta.script_version, &meta.sale_uid);
            self.queue.finished(req.sale_id, key_uid, claims, ends_at);
        }
        Ok(answer)
    }

    /// A queued sale's buy carries the buyer's own admission, verified in memory.
    fn admitted(
        &self,
        req: &BuyRequest<'_>,
        gated: &Gated,
        user: &UserId,
    ) -> Result<Option<AdmissionClaims>, BuyError> {
        if !gated.meta.admission.queued() {
            return Ok(None);
        }
        self.queue
            .admissions()
            .verify(req.admission, req.sale_id, user.as_ref())
            .map(Some)
            .map_err(BuyError::Admission)
    }

    /// The answers from memory, cheapest first: the client address's bucket, the item, the
    /// window and the sold-out flag. A refusal is answered at once unless the request carries
    /// an idempotency key (the buyer may be a winner whose answer was lost), in which case it
    /// is kept for [`BuyService::past_refusal`].
    async fn gate(&self, req: &BuyRequest<'_>) -> Result<Gated, BuyError> {
        // The client address's own bucket first: it turns a flood from one place away before
        // any other work. The instance-wide bucket comes last (`identify`), so that requests
        // answered from memory or refused as unauthenticated never take a token from it.
        if let Some(ip) = req.client_ip {
            self.bucket(self.gates.check_ip(ip))?;
        }
        // One monotonic clock read serves the catalog and the sold-out flag.
        let clock = Instant::now();
        let meta = self
            .catalog
            .item_at(req.item_id, clock)
            .await
            .map_err(BuyError::Catalog)?
            .filter(|m| m.sale_id == req.sale_id)
            .ok_or(BuyError::UnknownItem)?;
        let now = Utc::now();
        let refusal = if now < meta.starts_at {
            Some(BuyError::NotStarted)
        } else if now >= meta.ends_at {
            Some(BuyError::Ended)
        } else if self.sold_out.is_sold_out_at(req.item_id, clock) {
            self.hot.flagged.inc();
            Some(BuyError::SoldOut)
        } else {
            None
        };
        match refusal {
            Some(refusal) if req.idempotency_key.is_none() => Err(refusal),
            refusal => Ok(Gated {
                meta,
                clock,
                now,
                refusal,
            }),
        }
    }

    /// Who is buying: the buyer's token (or the gateway's header), then the buyer's bucket and
    /// the instance's.
    async fn identify(&self, req: &BuyRequest<'_>) -> Result<UserId, BuyError> {
        let user = self
            .auth
            .buyer(req.authorization, req.trusted_user, req.peer)?;
        self.bucket(self.gates.check_user(user.as_ref()))?;
        self.bucket(self.gates.check_global())?;
        Ok(user)
    }

    /// A refusal kept for a request with an idempotency key stands unless this buyer reserved
    /// with that key before: a made-up key skips nothing (one Redis lookup, not a script run
    /// per random key).
    async fn past_refusal(
        &self,
        gated: &Gated,
        user: &UserId,
        req: &BuyRequest<'_>,
    ) -> Result<(), BuyError> {
        let (Some(refusal), Some(key)) = (&gated.refusal, req.idempotency_key) else {
            return Ok(());
        };
        if self
            .stock
            .knows_key(&gated.meta, user.as_ref(), key.as_ref())
            .await?
        {
            return Ok(());
        }
        Err(match refusal {
            BuyError::NotStarted => BuyError::NotStarted,
            BuyError::Ended => BuyError::Ended,
            _ => BuyError::SoldOut,
        })
    }

    fn bucket(&self, r: Result<(), Rejected>) -> Result<(), BuyError> {
        r.map_err(|rejected| {
            self.metrics
                .buy
                .gate_rejections
                .with_label_values(&[rejected.gate.label()])
                .inc();
            BuyError::RateLimited {
                gate: rejected.gate,
                retry_after: rejected.retry_after,
            }
        })
    }
}

/// What the gates let through: the item, the time, and a refusal kept for a keyed retry.
struct Gated {
    meta: Arc<ItemMeta>,
    clock: Instant,
    now: DateTime<Utc>,
    refusal: Option<BuyError>,
}
