//! Requests for background recoveries: a lost state seen anywhere is queued once for the
//! prewarm scheduler.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use tokio::{sync::mpsc, time::Instant};

/// Requests for background recoveries, from wherever a loss is seen (a buy that found no state,
/// a reconciliation), handled by the prewarm scheduler. A sale asked for while its recovery is
/// queued or running is not queued twice.
#[derive(Clone)]
pub struct Recoveries {
    tx: mpsc::UnboundedSender<(u64, Instant)>,
    queued: Arc<Mutex<HashSet<u64>>>,
}

impl Recoveries {
    /// A handle and the receiving end the scheduler serves.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<(u64, Instant)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                queued: Arc::default(),
            },
            rx,
        )
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `sale_id` to be recovered; a no-op while it is queued or running.
    pub fn request(&self, sale_id: u64) {
        if self.queued().insert(sale_id) {
            tracing::warn!(
                sale_id,
                "the sale's Redis state is missing after its start; rebuilding it from MySQL"
            );
            let _ = self.tx.send((sale_id, Instant::now()));
        }
    }

    /// Marks a recovery finished (or failed), so the next loss is recovered again.
    pub fn finished(&self, sale_id: u64) {
        self.queued().remove(&sale_id);
    }
}
