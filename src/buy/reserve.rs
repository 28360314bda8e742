//! Reserve and confirm: the one atomic script call, then what a 202 waits for.

use super::{BuyAnswer, BuyError, BuyRequest, BuyService, Gated};
use crate::{
    config::ConfirmMode,
    domain::{FieldError, UserId, order_reserved::OrderReserved},
    observe::log::REPEAT_EVERY,
    stock::{DeductOutcome, ItemRef, StockService, stock_request},
};

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
pub(super) fn parse_quantity(body: &[u8]) -> Result<u32, BuyError> {
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

/// What the script answered, with the Kafka payload of the order it was asked to reserve.
pub(super) struct Reserved {
    outcome: DeductOutcome,
    payload: Vec<u8>,
}

impl BuyService {
    /// The atomic reservation: one script call (batched with the item's concurrent buys) that
    /// checks the window, the per-user limit, idempotency and the stock, and appends the order
    /// to the ledger.
    pub(super) async fn reserve(
        &self,
        req: &BuyRequest<'_>,
        gated: &Gated,
        user: &UserId,
        quantity: u32,
    ) -> Result<Reserved, BuyError> {
        let meta = &gated.meta;
        let key = req.idempotency_key.map(AsRef::as_ref);
        let order_id = StockService::new_order_id(meta, user.as_ref(), key);
        let reserved_at_ms = gated.now.timestamp_millis();
        let payload = OrderReserved::new(
            order_id,
            req.sale_id,
            req.item_id,
            user.as_ref(),
            quantity,
            meta.price_cents,
            reserved_at_ms,
        )
        .with_idempotency_key(key)
        .to_bytes();
        let request = stock_request(
            meta,
            user.as_ref(),
            quantity,
            order_id,
            &payload,
            reserved_at_ms,
            key,
        );
        let outcome = self.stock.deduct(&request).await?;
        Ok(Reserved { outcome, payload })
    }

    /// The answer to a script's outcome: a reservation goes to the outbox (and, in `kafka`
    /// mode, waits for the broker's acknowledgement); a refusal becomes its error.
    pub(super) async fn confirm(
        &self,
        req: &BuyRequest<'_>,
        gated: &Gated,
        user: UserId,
        quantity: u32,
        reserved: Reserved,
    ) -> Result<BuyAnswer, BuyError> {
        let kafka = self.confirmation.mode == ConfirmMode::Kafka;
        let timeout = self.confirmation.timeout;
        match reserved.outcome {
            DeductOutcome::Reserved {
                order_id,
                remaining,
            } => {
                // A shard's last unit is not the item's: its buyers get units moved to them.
                if remaining <= 0 && gated.meta.shards <= 1 {
                    self.mark_sold_out(req, gated);
                }
                tracing::debug!(%order_id, item_id = req.item_id, remaining, "reserved");
                let (item, payload) = (ItemRef::from(&*gated.meta), &reserved.payload);
                if kafka {
                    self.outbox
                        .publish_and_wait(item, order_id, payload, timeout)
                        .await
                        .map_err(|_| BuyError::Unconfirmed { order_id })?;
                } else {
                    self.outbox.publish(item, order_id, payload);
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
                if kafka {
                    self.outbox
                        .redeliver_and_wait(ItemRef::from(&*gated.meta), order_id, timeout)
                        .await
                        .map_err(|_| BuyError::Unconfirmed { order_id })?;
                }
                Ok(BuyAnswer::Replayed {
                    order_id,
                    user,
                    quantity: reserved,
                })
            }
            refused => Err(self.refusal(req, gated, refused)),
        }
    }

    /// Flags the item sold out here; a queued sale's waiting room hears it at once, not at its
    /// next read of the usher's board.
    fn mark_sold_out(&self, req: &BuyRequest<'_>, gated: &Gated) {
        self.sold_out.mark(req.item_id);
        if gated.meta.admission.queued() {
            self.queue.heard_sold_out(req.sale_id, &self.sold_out);
        }
    }

    /// The error of a script's refusal.
    fn refusal(&self, req: &BuyRequest<'_>, gated: &Gated, outcome: DeductOutcome) -> BuyError {
        match outcome {
            // Made on the master, not acknowledged by enough replicas: not sent to Kafka either
            // (the relay sends it once it is replicated), so a failover that loses it leaves
            // nothing behind that MySQL would count.
            DeductOutcome::Unconfirmed { order_id, .. } => BuyError::Unconfirmed { order_id },
            DeductOutcome::SoldOut { remaining } if remaining <= 0 => {
                self.mark_sold_out(req, gated);
                BuyError::SoldOut
            }
            DeductOutcome::SoldOut { remaining } => BuyError::InsufficientStock { remaining },
            DeductOutcome::LimitExceeded { bought, limit } => {
                BuyError::LimitExceeded { bought, limit }
            }
            DeductOutcome::NotStarted { .. } => BuyError::NotStarted,
            DeductOutcome::Ended => BuyError::Ended,
            DeductOutcome::NotWarmed if gated.now >= gated.meta.starts_at => {
                // A started sale without state: lost (Redis restarted empty, data flushed).
                self.recoveries.request(req.sale_id);
                BuyError::Recovering
            }
            DeductOutcome::NotWarmed => BuyError::NotWarmed,
            DeductOutcome::Recovering => BuyError::Recovering,
            DeductOutcome::Moving => BuyError::StockMoving,
            DeductOutcome::ForeignState => {
                if let Some(held) = self.foreign.allow("foreign", REPEAT_EVERY) {
                    tracing::error!(
                        sale_id = req.sale_id,
                        item_id = req.item_id,
                        refused_since_last = held,
                        "the item's Redis keys hold another sale's state; refusing every buy (two environments sharing one Redis, or a MySQL restored from backup?)"
                    );
                }
                BuyError::ForeignState
            }
            DeductOutcome::BadArgument
            | DeductOutcome::Reserved { .. }
            | DeductOutcome::Replayed { .. } => BuyError::BadArgument,
        }
    }
}
