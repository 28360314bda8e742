//! The background jobs of the API role: the outbox relay, the prewarm scheduler, expiry, the
//! lifecycle events relay, periodic reconciliation, the waiting rooms' usher and the record of
//! their finished buyers, the invalidation listener and pruning of the token buckets; each leader job under its own election.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{api::state::AppState, stores::redis::lock::LeaderElection};

/// How often lifecycle events are relayed to Kafka.
const EVENTS_INTERVAL: Duration = Duration::from_millis(500);
/// How often keyed token buckets are pruned.
const LIMITER_PRUNE_INTERVAL: Duration = Duration::from_secs(10);

pub(super) fn spawn_api_jobs(
    state: &AppState,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut jobs = Vec::new();
    let relay_ttl =
        Duration::from_millis(state.settings.relay.interval_ms * 5).max(Duration::from_secs(5));
    jobs.push(tokio::spawn(state.outbox.clone().run_relay(
        state.db.clone(),
        state.settings.relay.clone(),
        state.settings.sale.clone(),
        LeaderElection::new(state.lock.clone(), "relay", relay_ttl),
        shutdown.clone(),
    )));
    let requests = state
        .recovery_requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(requests) = requests {
        jobs.push(tokio::spawn(
            state
                .admin
                .clone()
                .run_scheduler(requests, shutdown.clone()),
        ));
    }
    let expiry = state.settings.lifecycle.expiry_interval_ms;
    if expiry > 0 {
        let interval = Duration::from_millis(expiry);
        let ttl = (interval * 5).max(Duration::from_secs(5));
        jobs.push(tokio::spawn(state.lifecycle.clone().run_expiry(
            interval,
            LeaderElection::new(state.lock.clone(), "expiry", ttl),
            shutdown.clone(),
        )));
    }
    jobs.push(tokio::spawn(crate::orders::events::run(
        state.db.clone(),
        state.outbox.producer().clone(),
        state.settings.lifecycle.events_topic.clone(),
        EVENTS_INTERVAL,
        LeaderElection::new(state.lock.clone(), "events", Duration::from_secs(5)),
        shutdown.clone(),
    )));
    let every = state.settings.reconcile.interval_secs;
    if every > 0 {
        let ttl = Duration::from_secs(every.saturating_mul(3)).max(Duration::from_secs(10));
        jobs.push(tokio::spawn(state.reconciler.clone().run_periodically(
            LeaderElection::new(state.lock.clone(), "reconcile", ttl),
            shutdown.clone(),
        )));
    }
    let sold_out = state.buy.sold_out_flags().clone();
    jobs.push(tokio::spawn(crate::sales::invalidation::listen(
        state.sale_pages.clone(),
        move |item| sold_out.clear(item),
        state.redis.clone(),
        state.stock.keys().sale_invalidations(),
        shutdown.clone(),
    )));
    jobs.push(tokio::spawn(state.queue.clone().run_usher(
        LeaderElection::new(state.lock.clone(), "usher", Duration::from_secs(3)),
        shutdown.clone(),
    )));
    jobs.push(tokio::spawn(
        state.queue.clone().run_flusher(shutdown.clone()),
    ));
    let gates = state.buy.gates().clone();
    let token = shutdown.clone();
    jobs.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(LIMITER_PRUNE_INTERVAL) => gates.prune(),
            }
        }
    }));
    jobs
}
