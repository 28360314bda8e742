//! Listening for sale changes announced by any instance.
//!
//! Redis pub/sub rather than Kafka: delivery is immediate and needs no consumer group or offset
//! per instance, and a message missed while an instance reconnects costs at most the local
//! cache's few-second lifetime, which is the staleness bound anyway.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::SalePages;
use crate::redis_pool::RedisPool;

/// Wait between reconnection attempts.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Subscribes to the invalidation channel and drops local copies of announced sales, until
/// `shutdown`. Reconnects by itself.
pub async fn listen(
    pages: SalePages,
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
                if let Ok(id) = payload.parse::<u64>() {
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
