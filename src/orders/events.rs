//! Lifecycle events to Kafka: the relay reads the `order_events` outbox (written in the same
//! transaction as each change) in order, sends each event keyed by its item, and marks what the
//! broker acknowledged. At least once: a crash between the ack and the mark sends an event
//! again, so downstream systems dedupe by order id and type.

use std::time::Duration;

use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::{
    observe::log::{REPEAT_EVERY, Throttle},
    stores::{kafka::producer::OrderProducer, mysql::lifecycle, redis::lock::LeaderElection},
};

/// Events read per pass.
const BATCH: u32 = 500;

/// Sends one batch of unsent events to `topic`; returns how many were acknowledged.
///
/// # Errors
/// MySQL failed.
pub(crate) async fn relay_once(
    db: &MySqlPool,
    producer: &OrderProducer,
    topic: &str,
) -> Result<usize, sqlx::Error> {
    let events = lifecycle::unsent_events(db, BATCH).await?;
    let sends = events.iter().map(|e| async move {
        let sent = producer
            .send_to(topic, &e.item_id.to_string(), e.payload.as_bytes())
            .await;
        (e.id, sent)
    });
    let mut acked = Vec::new();
    let mut failed = None;
    for (id, sent) in futures::future::join_all(sends).await {
        match sent {
            Ok(()) => acked.push(id),
            Err(e) => failed = Some(e),
        }
    }
    if let Some(e) = failed {
        tracing::warn!(error.message = %e, sent = acked.len(), "some lifecycle events were not acknowledged; the next pass sends them");
    }
    lifecycle::mark_sent(db, &acked).await?;
    Ok(acked.len())
}

/// Relays every `interval` while this instance holds the relay lock, until `shutdown`.
pub async fn run(
    db: MySqlPool,
    producer: OrderProducer,
    topic: String,
    interval: Duration,
    mut leader: LeaderElection,
    shutdown: CancellationToken,
) {
    let throttle = Throttle::default();
    while leader.next_turn(interval, &shutdown).await {
        loop {
            match relay_once(&db, &producer, &topic).await {
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => break,
                Err(e) => {
                    if let Some(held) = throttle.allow("relay", REPEAT_EVERY) {
                        tracing::warn!(error.message = %e, repeats_since_last = held, "lifecycle event relay failed; retrying");
                    }
                    break;
                }
            }
        }
    }
    leader.step_down().await;
}
