//! The prewarm scheduler: warms sales as they come within the lead time and runs the
//! recoveries asked for meanwhile.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::SaleAdmin;
use crate::stores::mysql::sales;

/// How often the scheduler looks for sales coming within the prewarm lead time.
const SCHEDULER_INTERVAL: Duration = Duration::from_secs(5);

impl SaleAdmin {
    /// Warms sales as they come within the lead time, and recovers sales whose Redis state
    /// was found missing (`recoveries`), until `shutdown`.
    pub(crate) async fn run_scheduler(
        self,
        mut recoveries: tokio::sync::mpsc::UnboundedReceiver<(u64, tokio::time::Instant)>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some((sale_id, seen_at)) = recoveries.recv() => {
                    self.recover_in_background(sale_id, seen_at, &shutdown).await;
                    continue;
                }
                () = tokio::time::sleep(SCHEDULER_INTERVAL) => {}
            }
            self.prewarm_due().await;
        }
    }

    /// Warms every sale that has come within the lead time.
    async fn prewarm_due(&self) {
        let now = Utc::now();
        let horizon = now + chrono::Duration::seconds(self.settings.prewarm_lead_secs as i64);
        let due = match sales::due_for_prewarm(&self.db, horizon, now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error.message = %e, "prewarm scheduler could not list sales");
                return;
            }
        };
        for id in due {
            match self.prewarm(id, false).await {
                Ok(_) => self.notify(id).await,
                Err(e) => {
                    tracing::warn!(sale_id = id, error.message = %e, "scheduled prewarm failed")
                }
            }
        }
    }
}
