//! The load and what watches it: a collector drains the recorder once a second into the
//! per-second series (and the live line), and once more when the load ends.

use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use crate::{
    args::Plan,
    progress::Live,
    run::{self, LoadEnd, Target},
    stats::{Aggregate, Recorder},
};

/// Runs the load of `plan` against `target` until it is done or `cancel` completes; returns
/// everything recorded, second by second, and how the load ended.
pub(crate) async fn measure(
    plan: &Plan,
    target: Target,
    show_progress: bool,
    cancel: impl Future<Output = ()>,
) -> (Aggregate, LoadEnd) {
    let recorder = Arc::new(Recorder::new(plan.mode.workers()));
    let aggregate = Arc::new(Mutex::new(Aggregate::default()));
    let live = show_progress.then(|| Arc::new(Live::start(plan)));
    let start = Instant::now();
    let collector = collect(&recorder, &aggregate, live.clone(), start);
    let cancel = noted(cancel, live.clone());
    let end = run::run_load(plan, Arc::new(target), recorder.clone(), start, cancel).await;
    collector.abort();
    let _ = collector.await;
    if let Some(live) = &live {
        live.finish();
    }
    let mut agg = std::mem::take(&mut *aggregate.lock().unwrap_or_else(PoisonError::into_inner));
    agg.drain(&recorder, end.elapsed);
    drop_empty_tail(&mut agg);
    (agg, end)
}

/// Drains the recorder a second after `start` and every second after, showing each second
/// on the live output.
fn collect(
    recorder: &Arc<Recorder>,
    aggregate: &Arc<Mutex<Aggregate>>,
    live: Option<Arc<Live>>,
    start: Instant,
) -> JoinHandle<()> {
    let (recorder, aggregate) = (recorder.clone(), aggregate.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            (start + Duration::from_secs(1)).into(),
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let elapsed = start.elapsed();
            let mut agg = aggregate.lock().unwrap_or_else(PoisonError::into_inner);
            let second = agg.drain(&recorder, elapsed).clone();
            if let Some(live) = &live {
                live.tick(elapsed, &second, &agg.total);
            }
        }
    })
}

/// `cancel`, saying on the live output what an interrupt does.
async fn noted(cancel: impl Future<Output = ()>, live: Option<Arc<Live>>) {
    cancel.await;
    if let Some(live) = live {
        live.note("interrupted: finishing the requests in flight, then the summary");
    }
}

/// Drops a last second that is a short, empty tail (the final drain right after a tick).
fn drop_empty_tail(agg: &mut Aggregate) {
    if agg.series.len() > 1
        && agg
            .series
            .last()
            .is_some_and(|p| p.requests == 0 && p.secs < 0.5)
    {
        agg.series.pop();
    }
}
