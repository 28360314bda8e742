//! Typed replies of the stock scripts. Business outcomes are values, not errors: a sold-out
//! answer is the common case on the hot path and must cost nothing more than a match.

use redis::Value;
use uuid::Uuid;

/// What `prewarm.vN.lua` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrewarmOutcome {
    /// Stock and metadata written.
    Warmed {
        /// Units now in Redis.
        remaining: i64,
    },
    /// The item was warmed before; nothing changed.
    AlreadyWarmed {
        /// Units currently in Redis.
        remaining: i64,
    },
    /// Metadata and expiries updated; stock untouched.
    Refreshed {
        /// Units currently in Redis.
        remaining: i64,
    },
    /// The computed expiry is not in the future; nothing written.
    BadExpiry,
    /// A forced overwrite was refused because reservations exist.
    HasReservations {
        /// Units currently in Redis.
        remaining: i64,
    },
    /// A refresh found no warmed item.
    NotWarmed,
    /// The script refused its arguments.
    BadArgument,
    /// A rebuild began: meta carries its token, every other key is cleared (v3 on).
    RestoreBegun,
    /// A rebuild ended: the stock is written and the item sells again (v3 on).
    Restored {
        /// Units now in Redis.
        remaining: i64,
    },
    /// The keys hold another sale's state, or state without meta; nothing written (v3 on).
    ForeignState,
    /// The end of a rebuild came without the current token (another rebuild took over).
    NotRestoring,
    /// The item is being rebuilt; nothing written.
    Restoring,
}

/// What `deduct.vN.lua` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeductOutcome {
    /// Units reserved under a new order.
    Reserved {
        /// The order id.
        order_id: Uuid,
        /// Units left after this reservation.
        remaining: i64,
    },
    /// The same user and idempotency key reserved before; the earlier order is returned.
    Replayed {
        /// The earlier order id.
        order_id: Uuid,
        /// Units the earlier reservation holds.
        quantity: u32,
    },
    /// The item has no stock in Redis (not warmed yet, or expired).
    NotWarmed,
    /// The sale window has not opened.
    NotStarted {
        /// Opening time, Unix milliseconds.
        starts_at_ms: i64,
    },
    /// The sale window has closed.
    Ended,
    /// The user would exceed the per-user limit.
    LimitExceeded {
        /// Units the user already holds.
        bought: i64,
        /// The per-user limit.
        limit: i64,
    },
    /// Fewer units remain than asked for (none, when sold out).
    SoldOut {
        /// Units left.
        remaining: i64,
    },
    /// The script refused its arguments.
    BadArgument,
    /// The item's state in Redis belongs to another sale (v3 on); nothing changed.
    ForeignState,
    /// The item's state is being rebuilt from MySQL (v3 on); nothing changed.
    Recovering,
    /// The buyer's shard of a sharded item is short while units move to it from another
    /// holder; nothing was reserved, and a retry soon may be.
    Moving,
    /// The reservation (or replay) was made, but too few replicas acknowledged it in time: it
    /// may not survive a failover, so it is not confirmed to the buyer. It stands on the master;
    /// a retry with the same idempotency key returns it.
    Unconfirmed {
        /// The order id.
        order_id: Uuid,
        /// Units it holds.
        quantity: u32,
    },
}

/// What `release.vN.lua` did for one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Its units went back to the stock now.
    Released {
        /// Units given back.
        units: u32,
    },
    /// Released before; nothing changed.
    Already {
        /// Units given back then.
        units: u32,
    },
    /// No such reservation in the item's state (rebuilt without it, or expired with the sale):
    /// nothing to give back.
    NotInLedger,
    /// The item has no state in Redis (expired, or lost: a rebuild takes MySQL's stock, which
    /// already holds the units).
    NotWarmed,
    /// The item's state belongs to another sale.
    ForeignState,
    /// A rebuild runs; ask again after it.
    Recovering,
}

impl ReleaseOutcome {
    /// True when nothing more is owed to Redis for this order.
    pub fn settled(self) -> bool {
        matches!(
            self,
            Self::Released { .. } | Self::Already { .. } | Self::NotInLedger | Self::NotWarmed
        )
    }

    /// Reads one order's reply of a `release.vN.lua` call.
    ///
    /// # Errors
    /// The reply does not match the script's contract.
    pub(crate) fn from_reply(reply: Vec<Value>) -> Result<Self, UnexpectedReply> {
        let units = || u32::try_from(int_at(&reply, 1).unwrap_or(0)).unwrap_or(0);
        Ok(match int_at(&reply, 0) {
            Some(1) => Self::Released { units: units() },
            Some(2) => Self::Already { units: units() },
            Some(-1) => Self::NotInLedger,
            Some(-2) => Self::NotWarmed,
            Some(-7) => Self::ForeignState,
            Some(-8) => Self::Recovering,
            _ => return Err(UnexpectedReply::new("release", reply)),
        })
    }
}

/// A script reply that does not match its documented contract.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unexpected reply from {script}: {reply:?}")]
pub struct UnexpectedReply {
    script: &'static str,
    reply: Vec<Value>,
}

impl UnexpectedReply {
    /// `reply` of `script` broke its contract.
    pub fn new(script: &'static str, reply: Vec<Value>) -> Self {
        Self { script, reply }
    }
}

pub(crate) fn int_at(reply: &[Value], i: usize) -> Option<i64> {
    match reply.get(i)? {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn uuid_at(reply: &[Value], i: usize) -> Option<Uuid> {
    match reply.get(i)? {
        Value::BulkString(b) => super::ledger::parse_order_id(b),
        Value::SimpleString(s) => Uuid::try_parse(s).ok(),
        _ => None,
    }
}

impl PrewarmOutcome {
    /// Reads a `prewarm.vN.lua` reply.
    ///
    /// # Errors
    /// The reply does not match the script's contract.
    pub(crate) fn from_reply(reply: Vec<Value>) -> Result<Self, UnexpectedReply> {
        let remaining = int_at(&reply, 1).unwrap_or(0);
        let outcome = match int_at(&reply, 0) {
            Some(1) => Self::Warmed { remaining },
            Some(2) => Self::AlreadyWarmed { remaining },
            Some(3) => Self::Refreshed { remaining },
            Some(-1) => Self::BadExpiry,
            Some(-2) => Self::HasReservations { remaining },
            Some(-3) => Self::NotWarmed,
            Some(-4) => Self::BadArgument,
            Some(4) => Self::RestoreBegun,
            Some(5) => Self::Restored { remaining },
            Some(-5) => Self::ForeignState,
            Some(-6) => Self::NotRestoring,
            Some(-7) => Self::Restoring,
            _ => {
                return Err(UnexpectedReply {
                    script: "prewarm",
                    reply,
                });
            }
        };
        Ok(outcome)
    }
}

impl DeductOutcome {
    /// This outcome once `acked` of the `wanted` replicas acknowledged the call's writes: a
    /// reservation (of `quantity` units) or a replay too few acknowledged becomes
    /// [`DeductOutcome::Unconfirmed`].
    pub(crate) fn confirmed_by(self, acked: u32, wanted: u32, quantity: u32) -> Self {
        if acked >= wanted {
            return self;
        }
        match self {
            Self::Reserved { order_id, .. } => Self::Unconfirmed { order_id, quantity },
            Self::Replayed { order_id, quantity } => Self::Unconfirmed { order_id, quantity },
            other => other,
        }
    }

    /// Reads one request's reply from `deduct.vN.lua`. A reservation there
    /// is `{1, remaining}`: its order id is the one the request sent, `order_id`.
    ///
    /// # Errors
    /// The reply does not match the script's contract.
    pub(crate) fn from_batch_reply(
        reply: Vec<Value>,
        order_id: Uuid,
    ) -> Result<Self, UnexpectedReply> {
        if int_at(&reply, 0) != Some(1) {
            return Self::from_other_reply(reply);
        }
        match int_at(&reply, 1) {
            Some(remaining) if reply.len() == 2 => Ok(Self::Reserved {
                order_id,
                remaining,
            }),
            _ => Err(UnexpectedReply::new("deduct", reply)),
        }
    }

    /// Reads a `deduct.vN.lua` reply other than a reservation.
    ///
    /// # Errors
    /// The reply does not match the script's contract.
    fn from_other_reply(reply: Vec<Value>) -> Result<Self, UnexpectedReply> {
        let bad = |reply| UnexpectedReply {
            script: "deduct",
            reply,
        };
        let outcome = match int_at(&reply, 0) {
            Some(2) => match (uuid_at(&reply, 1), int_at(&reply, 2)) {
                (Some(order_id), Some(q)) => Self::Replayed {
                    order_id,
                    quantity: u32::try_from(q).unwrap_or(0),
                },
                _ => return Err(bad(reply)),
            },
            Some(-1) => Self::NotWarmed,
            Some(-2) => Self::NotStarted {
                starts_at_ms: int_at(&reply, 1).unwrap_or(0),
            },
            Some(-3) => Self::Ended,
            Some(-4) => Self::LimitExceeded {
                bought: int_at(&reply, 1).unwrap_or(0),
                limit: int_at(&reply, 2).unwrap_or(0),
            },
            Some(-5) => Self::SoldOut {
                remaining: int_at(&reply, 1).unwrap_or(0),
            },
            Some(-6) => Self::BadArgument,
            Some(-7) => Self::ForeignState,
            Some(-8) => Self::Recovering,
            _ => return Err(bad(reply)),
        };
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reservation_reply_takes_the_order_id_the_request_sent() {
        let id = Uuid::now_v7();
        assert_eq!(
            DeductOutcome::from_batch_reply(vec![Value::Int(1), Value::Int(7)], id).unwrap(),
            DeductOutcome::Reserved {
                order_id: id,
                remaining: 7
            }
        );
        assert_eq!(
            DeductOutcome::from_batch_reply(vec![Value::Int(-5), Value::Int(0)], id).unwrap(),
            DeductOutcome::SoldOut { remaining: 0 }
        );
        assert!(DeductOutcome::from_batch_reply(vec![Value::Int(1)], id).is_err());
    }

    #[test]
    fn an_unknown_code_is_an_error_not_a_guess() {
        let id = Uuid::now_v7();
        assert!(DeductOutcome::from_batch_reply(vec![Value::Int(9)], id).is_err());
        assert!(
            DeductOutcome::from_batch_reply(vec![Value::Int(1), Value::Int(3), Value::Int(3)], id)
                .is_err()
        );
        assert!(PrewarmOutcome::from_reply(vec![]).is_err());
    }
}
