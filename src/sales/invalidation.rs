//! Listening for sale changes announced by any instance.
//!
//! Redis pub/sub rather than Kafka: delivery is immediate and needs no consumer group or offset
//! per instance, and a message missed while an instance reconnects costs at most the local
//! cache's few-second lifetime, which is the staleness bound anyway.
//!
//! Two kinds of message travel on the channel: a sale id (drop the sale's cached page) and
//! `released:<item id>` (units came back: drop the item's sold-out flag, so they sell at once).

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::page::SalePages;
use crate::stores::redis::RedisPool;

/// The prefix of a message saying an item got units back.
pub(crate) const RELEASED_PREFIX: &str = "released:";

/// Wait between reconnection attempts.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Subscribes to the invalidation channel and drops local copies of announced sales, and calls
/// `on_units_back` with each item that got units back, until `shutdown`. Reconnects by itself.
pub(crate) async fn listen(
    pages: SalePages,
    on_units_back: impl Fn(u64) + Send,
    redis: RedisPool,
    channel: String,
    shutdown: CancellationToken,
) {
    loop {
        let session = async {
            // Asked again at every reconnect: under Sentinel the master may have moved.
            let client = redis.dedicated_client().await?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            tracing::debug!(%channel, "listening for sale invalidations");
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let payload: String = msg.get_payload().unwrap_or_default();
                if let Some(item) = payload.strip_prefix(RELEASED_PREFIX) {
                    if let Ok(item) = item.parse::<u64>() {
                        on_units_back(item);
                    }
                } else if let Ok(id) = payload.parse::<u64>() {
                    pages.forget_locally(id).await;
                }
            }
            Ok::<(), redis::RedisError>(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = session => {
                if let Err(e) = result {
                    tracing::warn!(error.message = %e, "sale invalidation listener disconnected; reconnecting");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
}
