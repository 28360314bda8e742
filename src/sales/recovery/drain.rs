//! The drain before a rebuild: waiting until every order reserved before the loss has reached
//! MySQL (out of librdkafka's queues, then persisted by the consumer).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::{Recovery, StillDraining};
use crate::{
    observe::log::{REPEAT_EVERY, Throttle},
    stores::kafka::lag::LagProbe,
};

/// How often the drain is checked.
const DRAIN_POLL: Duration = Duration::from_millis(500);

impl Recovery {
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
}
