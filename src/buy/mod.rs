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

pub mod gate;
pub mod identify;

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Bytes;
use chrono::Utc;
use uuid::Uuid;

use crate::{
    api::error::ApiError,
    buy::{
        gate::{Gates, Rejected, SoldOutFlags},
        identify::Authenticator,
    },
    config::ConfirmMode,
    domain::{FieldError, IdempotencyKey, UserId, order_reserved::OrderReserved},
    observe::{
        log::{REPEAT_EVERY, Throttle},
        metrics::Metrics,
    },
    outbox::Outbox,
    sales::{Recoveries, catalog::Catalog},
    stock::{DeductOutcome, StockService, stock_request},
};

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
            metrics,
        } = parts;
        Self {
            hot: HotCounters {
                sold_out: metrics.buy_outcomes.with_label_values(&["sold_out"]),
                reserved: metrics.buy_outcomes.with_label_values(&["reserved"]),
                flagged: metrics
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
            foreign: Arc::default(),
            metrics,
        }
    }

    /// The token buckets (pruned by a background task).
    pub fn gates(&self) -> &Arc<Gates> {
        &self.gates
    }

    /// The local sold-out flags (cleared when units come back).
    pub fn sold_out_flags(&self) -> &Arc<SoldOutFlags> {
        &self.sold_out
    }

    /// Runs one buy and records its outcome and latency. `body` yields the request body,
    /// `{"quantity": n}` or empty for one unit; it is awaited only after the public gates, so
    /// a sold-out answer never waits for it (the server hands a body over in a later poll).
    /// The connection stays open: hyper drains an unread body that has arrived, and closes
    /// the connection only when it has not (still in transit, or `Expect: 100-continue`).
    ///
    /// # Errors
    /// Every refusal (rate limited, not started, sold out, ...) as an [`ApiError`].
    pub async fn buy(
        &self,
        req: BuyRequest<'_>,
        body: impl Future<Output = Result<Bytes, ApiError>>,
    ) -> Result<BuyAnswer, ApiError> {
        let mut started = None;
        let result = self.run(&req, body, &mut started).await;
        match &result {
            Ok(BuyAnswer::Reserved { .. }) => self.hot.reserved.inc(),
            Ok(BuyAnswer::Replayed { .. }) => self
                .metrics
                .buy_outcomes
                .with_label_values(&["replayed"])
                .inc(),
            Err(ApiError::SoldOut) => self.hot.sold_out.inc(),
            Err(e) => self
                .metrics
                .buy_outcomes
                .with_label_values(&[e.code()])
                .inc(),
        }
        // An answer from memory (before the body is read) took no measurable time: it is
        // recorded in the lowest bucket without reading the clock again.
        self.metrics
            .buy_latency
            .observe(started.map_or(0.0, |t: Instant| t.elapsed().as_secs_f64()));
        result
    }

    fn gate(&self, r: Result<(), Rejected>) -> Result<(), ApiError> {
        r.map_err(|rejected| {
            self.metrics
                .gate_rejections
                .with_label_values(&[rejected.gate.label()])
                .inc();
            ApiError::RateLimited {
                retry_after: rejected.retry_after,
            }
        })
    }

    async fn run(
        &self,
        req: &BuyRequest<'_>,
        body: impl Future<Output = Result<Bytes, ApiError>>,
        started: &mut Option<Instant>,
    ) -> Result<BuyAnswer, ApiError> {
        // The client address's own bucket first: it turns a flood from one place away before
        // any other work. The instance-wide bucket comes last (below), so that requests
        // answered from memory or refused as unauthenticated never take a token from it.
        if let Some(ip) = req.client_ip {
            self.gate(self.gates.check_ip(ip))?;
        }
        // One monotonic clock read serves the catalog and the sold-out flag.
        let clock = Instant::now();
        let meta = self
            .catalog
            .item_at(req.item_id, clock)
            .await
            .map_err(|e| ApiError::shared_db("loading item metadata", &e))?
            .filter(|m| m.sale_id == req.sale_id)
            .ok_or(ApiError::NotFound("sale item"))?;
        let now = Utc::now();
        // Answered from memory: outside the window, or sold out. A retry with an idempotency
        // key that was used before is the exception (the buyer may be a winner whose answer
        // was lost): the script answers it with the first order, even after the end.
        let refusal = if now < meta.starts_at {
            Some(ApiError::NotStarted)
        } else if now >= meta.ends_at {
            Some(ApiError::Ended)
        } else if self.sold_out.is_sold_out_at(req.item_id, clock) {
            self.hot.flagged.inc();
            Some(ApiError::SoldOut)
        } else {
            None
        };
        if let Some(refusal) = &refusal
            && req.idempotency_key.is_none()
        {
            return Err(refusal.same());
        }
        *started = Some(clock);
        let quantity = parse_quantity(&body.await?)?;
        let user = self
            .auth
            .buyer(req.authorization, req.trusted_user, req.peer)?;
        self.gate(self.gates.check_user(user.as_ref()))?;
        self.gate(self.gates.check_global())?;
        // A made-up key skips nothing: only one of this buyer's earlier attempts reaches the
        // script past a refusal (one Redis lookup, not a script run per random key).
        if let (Some(refusal), Some(key)) = (refusal, req.idempotency_key)
            && !self
                .stock
                .knows_key(&meta, user.as_ref(), key.as_ref())
                .await?
        {
            return Err(refusal);
        }
        if quantity > meta.per_user_limit {
            return Err(FieldError::new(
                "quantity",
                format!("at most {} per user", meta.per_user_limit),
            )
            .into());
        }
        let order_id = StockService::new_order_id(
            &meta,
            user.as_ref(),
            req.idempotency_key.map(AsRef::as_ref),
        );
        let reserved_at_ms = now.timestamp_millis();
        let event = OrderReserved::new(
            order_id,
            req.sale_id,
            req.item_id,
            user.as_ref(),
            quantity,
            meta.price_cents,
            reserved_at_ms,
        )
        .with_idempotency_key(req.idempotency_key.map(AsRef::as_ref));
        let payload = event.to_bytes();
        let request = stock_request(
            &meta,
            user.as_ref(),
            quantity,
            order_id,
            &payload,
            reserved_at_ms,
            req.idempotency_key.map(AsRef::as_ref),
        );
        let outcome = self.stock.deduct(&request).await?;
        match outcome {
            DeductOutcome::Reserved {
                order_id,
                remaining,
            } => {
                if remaining <= 0 {
                    self.sold_out.mark(req.item_id);
                }
                tracing::debug!(%order_id, item_id = req.item_id, remaining, "reserved");
                if self.confirmation.mode == ConfirmMode::Kafka {
                    self.outbox
                        .publish_and_wait(
                            req.sale_id,
                            req.item_id,
                            order_id,
                            &payload,
                            self.confirmation.timeout,
                        )
                        .await
                        .map_err(|_| ApiError::Unconfirmed { order_id })?;
                } else {
                    self.outbox
                        .publish(req.sale_id, req.item_id, order_id, &payload);
                }
                Ok(BuyAnswer::Reserved {
                    order_id,
                    user,
                    quantity,
                })
            }
            DeductOutcome::Replayed {
                order_id,
                quantity: reserved,
            } => {
                if self.confirmation.mode == ConfirmMode::Kafka {
                    self.outbox
                        .redeliver_and_wait(
                            req.sale_id,
                            req.item_id,
                            order_id,
                            self.confirmation.timeout,
                        )
                        .await
                        .map_err(|_| ApiError::Unconfirmed { order_id })?;
                }
                Ok(BuyAnswer::Replayed {
                    order_id,
                    user,
                    quantity: reserved,
                })
            }
            // Made on the master, not acknowledged by enough replicas: not sent to Kafka either
            // (the relay sends it once it is replicated), so a failover that loses it leaves
            // nothing behind that MySQL would count.
            DeductOutcome::Unconfirmed { order_id, .. } => Err(ApiError::Unconfirmed { order_id }),
            DeductOutcome::SoldOut { remaining } if remaining <= 0 => {
                self.sold_out.mark(req.item_id);
                Err(ApiError::SoldOut)
            }
            DeductOutcome::SoldOut { remaining } => Err(ApiError::conflict(
                "insufficient_stock",
                format!("only {remaining} left"),
            )),
            DeductOutcome::LimitExceeded { bought, limit } => Err(ApiError::conflict(
                "limit_exceeded",
                format!("you hold {bought} of at most {limit} per user"),
            )),
            DeductOutcome::NotStarted { .. } => Err(ApiError::NotStarted),
            DeductOutcome::Ended => Err(ApiError::Ended),
            DeductOutcome::NotWarmed if now >= meta.starts_at => {
                // A started sale without state: lost (Redis restarted empty, data flushed).
                self.recoveries.request(req.sale_id);
                Err(ApiError::Recovering)
            }
            DeductOutcome::NotWarmed => Err(ApiError::Unavailable(
                "the sale's stock is not ready yet; try again shortly".into(),
            )),
            DeductOutcome::Recovering => Err(ApiError::Recovering),
            DeductOutcome::ForeignState => {
                if let Some(held) = self.foreign.allow("foreign", REPEAT_EVERY) {
                    tracing::error!(
                        sale_id = req.sale_id,
                        item_id = req.item_id,
                        refused_since_last = held,
                        "the item's Redis keys hold another sale's state; refusing every buy (two environments sharing one Redis, or a MySQL restored from backup?)"
                    );
                }
                Err(ApiError::ForeignState)
            }
            DeductOutcome::BadArgument => Err(ApiError::Internal(anyhow::anyhow!(
                "deduct script refused its arguments"
            ))),
        }
    }
}

/// The buy body; empty means one unit.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyBody {
    /// Units (default 1; the item's per-user limit bounds it too).
    #[schema(minimum = 1, maximum = 10_000)]
    quantity: Option<i64>,
}

/// Most units one request may ask for (the per-user limit usually bounds it far lower).
const MAX_QUANTITY: i64 = 10_000;

/// The units a buy asks for; an empty body and JSON `null` ask for one.
fn parse_quantity(body: &[u8]) -> Result<u32, ApiError> {
    let body: BuyBody = if body.iter().all(u8::is_ascii_whitespace) {
        BuyBody::default()
    } else {
        crate::domain::json::parse::<Option<BuyBody>>(body)?.unwrap_or_default()
    };
    match body.quantity.unwrap_or(1) {
        q @ 1..=MAX_QUANTITY => Ok(q as u32),
        q => Err(FieldError::new(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}, got {q}"),
        )
        .into()),
    }
}
