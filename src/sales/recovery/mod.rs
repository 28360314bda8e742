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

mod drain;
mod rebuild;
mod requests;
mod state;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::MySqlPool;

use crate::{
    stock::StockService,
    stores::{
        kafka::KafkaEndpoint,
        mysql::sales::{STATUS_CREATED, SaleRow},
    },
};

pub use requests::Recoveries;

/// A sale counts as started this long before its start: Redis's clock, which the scripts
/// use, may run ahead of this process's.
const CLOCK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// True when a sale's lost Redis state must be rebuilt from MySQL rather than warmed afresh: it
/// was (or was being) written to Redis, and the sale may have sold already.
pub(crate) fn needs_recovery(sale: &SaleRow, now: DateTime<Utc>) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
            admission: Default::default(),
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
