//! The delivery pipeline of fresh reservations: one task awaits every queued message's
//! delivery future and records acks in Redis in batches (one `ZREM` per item per flush),
//! instead of a task and a round trip per order.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

use crate::{
    observe::{
        log::{REPEAT_EVERY, Throttle},
        metrics::Metrics,
    },
    stock::{ItemRef, StockService, order_holder},
    stores::kafka::producer::{OrderProducer, Queued},
    stores::redis::keys::Holder,
};

/// Acks gathered before a flush is forced.
const FLUSH_AT: usize = 256;
/// Longest an ack waits before it is written to Redis.
const FLUSH_EVERY: Duration = Duration::from_millis(5);

enum Msg {
    Track {
        item: ItemRef,
        order_id: Uuid,
        started: Instant,
        queued: Queued,
    },
    /// A delivery the buy path awaited itself: only the ack is left to record.
    Acked {
        item: ItemRef,
        order_id: Uuid,
    },
    Stop(Duration),
}

/// Handle on the pipeline task.
#[derive(Clone)]
pub(crate) struct Pipeline {
    tx: mpsc::UnboundedSender<Msg>,
    stopped: Arc<AtomicBool>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Starts the pipeline task.
    pub fn start(stock: StockService, metrics: Arc<Metrics>, producer: OrderProducer) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(rx, stock, metrics.clone(), producer));
        Self {
            tx,
            stopped: Arc::new(AtomicBool::new(false)),
            task: Arc::new(Mutex::new(Some(task))),
            metrics,
        }
    }

    /// Follows one queued message until its ack.
    pub(crate) fn track(&self, item: ItemRef, order_id: Uuid, queued: Queued) {
        if self.stopped.load(Ordering::Relaxed) {
            return; // shutting down: the entry stays in the outbox for the relay
        }
        self.metrics.kafka.in_flight.inc();
        let msg = Msg::Track {
            item,
            order_id,
            started: Instant::now(),
            queued,
        };
        if self.tx.send(msg).is_err() {
            self.metrics.kafka.in_flight.dec();
        }
    }

    /// Records the ack of a delivery awaited elsewhere (the `kafka` confirmation mode), in the
    /// next batch of outbox removals.
    pub(crate) fn acked(&self, item: ItemRef, order_id: Uuid) {
        let _ = self.tx.send(Msg::Acked { item, order_id });
    }

    /// Stops taking new messages, waits up to `timeout` for those in flight, records their
    /// acks and ends the task.
    pub async fn stop(&self, timeout: Duration) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Msg::Stop(timeout));
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

type Acked = HashMap<ItemRef, Vec<Uuid>>;

async fn run(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    stock: StockService,
    metrics: Arc<Metrics>,
    producer: OrderProducer,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut acked: Acked = HashMap::new();
    let mut pending_acks = 0usize;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let mut deadline: Option<tokio::time::Instant> = None;
    let throttle = Throttle::default();
    loop {
        tokio::select! {
            msg = rx.recv(), if deadline.is_none() => match msg {
                Some(Msg::Track { item, order_id, started, queued }) => {
                    let generation = queued.generation;
                    in_flight.push(queued.delivery.map(move |r| (item, order_id, started, generation, r)));
                }
                Some(Msg::Acked { item, order_id }) => {
                    acked.entry(item).or_default().push(order_id);
                    pending_acks += 1;
                }
                Some(Msg::Stop(timeout)) => deadline = Some(tokio::time::Instant::now() + timeout),
                None => deadline = Some(tokio::time::Instant::now()),
            },
            Some((item, order_id, started, generation, result)) = in_flight.next() => {
                metrics.kafka.in_flight.dec();
                match result {
                    Ok(Ok(_)) => {
                        metrics.kafka.produce_latency.observe(started.elapsed().as_secs_f64());
                        acked.entry(item).or_default().push(order_id);
                        pending_acks += 1;
                        if pending_acks >= FLUSH_AT {
                            flush(&stock, &mut acked).await;
                            pending_acks = 0;
                        }
                    }
                    Ok(Err((e, _))) => {
                        metrics.kafka.produce_errors.inc();
                        tracing::debug!(%order_id, item_id = item.item_id, error.message = %e, "order not delivered to Kafka");
                        if let Some(held) = throttle.allow("failed", REPEAT_EVERY) {
                            tracing::warn!(item_id = item.item_id, error.message = %e, more_since_last = held, "orders not delivered to Kafka yet; they wait in the outbox for the relay");
                        }
                        producer.recover_from(generation, &e);
                    }
                    Err(_) => {
                        metrics.kafka.produce_errors.inc();
                        if let Some(held) = throttle.allow("lost", REPEAT_EVERY) {
                            tracing::warn!(%order_id, item_id = item.item_id, more_since_last = held, "delivery reports lost; the outbox relay will retry those orders");
                        }
                    }
                }
            },
            _ = tick.tick() => {
                if pending_acks > 0 {
                    flush(&stock, &mut acked).await;
                    pending_acks = 0;
                }
                if let Some(d) = deadline
                    && (in_flight.is_empty() || tokio::time::Instant::now() >= d)
                {
                    if !in_flight.is_empty() {
                        tracing::warn!(pending = in_flight.len(), "shutdown: deliveries still pending; the relay will re-emit them");
                    }
                    break;
                }
            }
        }
    }
    flush(&stock, &mut acked).await;
}

/// Removes acknowledged orders from their items' outbox sets, one command per item (each id in
/// both forms an outbox holds, text before v5 and 16 bytes from v5 on).
async fn flush(stock: &StockService, acked: &mut Acked) {
    for (item, ids) in acked.drain() {
        // A sharded item's orders sit in their buyers' shards: one command per shard (the
        // holder is read from each id; the key is built once per holder).
        let mut by_holder: HashMap<Holder, Vec<Uuid>> = HashMap::new();
        for id in ids {
            let holder = order_holder(&id, item.shards);
            by_holder.entry(holder).or_default().push(id);
        }
        for (holder, ids) in by_holder {
            let key = item.keys(stock.keys(), holder).outbox;
            remove_acked(stock, item.item_id, &key, &ids).await;
        }
    }
}

/// One `ZREM` of acknowledged orders from one outbox set.
async fn remove_acked(stock: &StockService, item_id: u64, key: &str, ids: &[Uuid]) {
    {
        let mut conn = stock.redis().get();
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(key);
        for id in ids {
            zrem.arg(id.as_bytes()).arg(id.to_string());
        }
        let result: redis::RedisResult<i64> = zrem.query_async(&mut conn).await;
        if let Err(e) = result {
            // Not fatal: the relay sends these again and the consumer dedupes them.
            tracing::warn!(item_id, acks = ids.len(), error.message = %e, "recording Kafka acks failed");
        }
    }
}
