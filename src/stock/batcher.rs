//! Gathers concurrent reservations of one item into one call of a batching deduct script.
//!
//! In a flash sale nearly every buy hits the same item. Rather than a Redis round trip and a
//! script run per buy, each request is queued on a lane (items are spread over a few lanes),
//! and the lane sends what is queued for an item as one call whenever fewer than
//! [`MAX_IN_FLIGHT`] of its calls are outstanding. Nothing waits on a timer: at low load a batch
//! holds one request and costs one channel hop; in a stampede a batch holds the requests that
//! arrived while the previous call was in flight. The script applies the requests in batch
//! order, each with exactly the checks it would get alone, so batching changes cost, not answers.
//!
//! The queues need no bound of their own: every queued request is an HTTP request waiting for
//! its answer, and those are capped by the server's in-flight limit.

use std::{
    collections::VecDeque,
    sync::{Arc, OnceLock},
};

use futures::{StreamExt, stream::FuturesUnordered};
use redis::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    DeductOutcome, DeductRequest, Keys, StockError, UnexpectedReply, scripts::VersionedScript,
};
use crate::{redis_pool::RedisPool, stock::ScriptRegistry};

/// Lanes, each a task with its own queue: enough that a few hot items do not share one
/// queue, few enough that each lane's batches stay full.
const LANES: usize = 4;
/// Most requests in one script call: a batch of this size runs in well under a millisecond,
/// so Redis never stalls other clients noticeably.
pub const MAX_BATCH: usize = 256;
/// Calls a lane keeps outstanding at once: two, so one batch fills while the other runs.
const MAX_IN_FLIGHT: usize = 2;

/// One queued request and where its answer goes.
struct Pending {
    sale_id: u64,
    item_id: u64,
    script: Arc<VersionedScript>,
    user: String,
    quantity: u32,
    order_id: Uuid,
    payload: Vec<u8>,
    idempotency_key: Option<String>,
    reply: oneshot::Sender<Result<DeductOutcome, StockError>>,
}

/// What every lane needs to call Redis.
#[derive(Clone)]
struct LaneContext {
    redis: RedisPool,
    keys: Keys,
    scripts: Arc<ScriptRegistry>,
}

/// The lanes of one stock service, started on first use (inside the runtime that serves).
pub struct DeductBatcher {
    context: LaneContext,
    lanes: OnceLock<Box<[mpsc::UnboundedSender<Pending>]>>,
}

impl DeductBatcher {
    /// A batcher calling `scripts` on `redis` with keys from `keys`.
    pub fn new(redis: RedisPool, keys: Keys, scripts: Arc<ScriptRegistry>) -> Self {
        Self {
            context: LaneContext {
                redis,
                keys,
                scripts,
            },
            lanes: OnceLock::new(),
        }
    }

    /// Queues `req` for `script` (a batching script) and waits for its own reply.
    ///
    /// # Errors
    /// Redis failed for the batch, or its reply broke the script's contract.
    pub async fn deduct(
        &self,
        script: &Arc<VersionedScript>,
        req: &DeductRequest<'_>,
    ) -> Result<DeductOutcome, StockError> {
        let lanes = self.lanes.get_or_init(|| {
            (0..LANES)
                .map(|_| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run_lane(rx, self.context.clone()));
                    tx
                })
                .collect()
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            sale_id: req.sale_id,
            item_id: req.item_id,
            script: script.clone(),
            user: req.user_id.to_owned(),
            quantity: req.quantity,
            order_id: req.order_id,
            payload: req.payload.to_vec(),
            idempotency_key: req.idempotency_key.map(str::to_owned),
            reply,
        };
        let lane = &lanes[(req.item_id % LANES as u64) as usize];
        if lane.send(pending).is_err() {
            return Err(StockError::Stopped);
        }
        answer.await.unwrap_or(Err(StockError::Stopped))
    }
}

/// A lane: takes requests, keeps up to [`MAX_IN_FLIGHT`] batches outstanding, until every
/// sender is gone and nothing is left.
async fn run_lane(mut rx: mpsc::UnboundedReceiver<Pending>, context: LaneContext) {
    let mut queue = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(p) => queue.push_back(p),
                None => open = false,
            },
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
        while let Ok(p) = rx.try_recv() {
            queue.push_back(p);
        }
        while in_flight.len() < MAX_IN_FLIGHT && !queue.is_empty() {
            in_flight.push(call(context.clone(), take_batch(&mut queue)));
        }
        if !open && queue.is_empty() && in_flight.is_empty() {
            break;
        }
    }
}

/// Takes the oldest request and every later one for the same item and script (up to
/// [`MAX_BATCH`]), keeping the others in order.
fn take_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let Some(head) = queue.pop_front() else {
        return Vec::new();
    };
    let mut batch = Vec::with_capacity(queue.len().min(MAX_BATCH - 1) + 1);
    let mut rest = VecDeque::new();
    let same = |p: &Pending| {
        p.sale_id == head.sale_id
            && p.item_id == head.item_id
            && Arc::ptr_eq(&p.script, &head.script)
    };
    while let Some(p) = queue.pop_front() {
        if batch.len() + 1 < MAX_BATCH && same(&p) {
            batch.push(p);
        } else {
            rest.push_back(p);
        }
    }
    batch.insert(0, head);
    *queue = rest;
    batch
}

/// Runs one batch and hands each request its reply.
async fn call(context: LaneContext, batch: Vec<Pending>) {
    let Some(first) = batch.first() else { return };
    let script = first.script.clone();
    let keys = context.keys.item(first.sale_id, first.item_id);
    context
        .scripts
        .metrics()
        .deduct_batch_size
        .observe(batch.len() as f64);
    let mut conn = context.redis.get();
    let result: redis::RedisResult<Vec<Value>> = context
        .scripts
        .invoke(&mut conn, &script, &keys.as_script_keys(), |cmd| {
            cmd.arg(batch.len());
            for p in &batch {
                let mut buf = Uuid::encode_buffer();
                cmd.arg(&p.user)
                    .arg(p.quantity)
                    .arg(&*p.order_id.hyphenated().encode_lower(&mut buf))
                    .arg(&p.payload)
                    .arg(p.idempotency_key.as_deref().unwrap_or(""));
            }
        })
        .await;
    match result {
        Ok(replies) if replies.len() == batch.len() => {
            for (p, reply) in batch.into_iter().zip(replies) {
                let outcome = match reply {
                    Value::Array(reply) => {
                        DeductOutcome::from_batch_reply(reply, p.order_id).map_err(Into::into)
                    }
                    other => Err(UnexpectedReply::new("deduct", vec![other]).into()),
                };
                let _ = p.reply.send(outcome);
            }
        }
        Ok(replies) => {
            let e = UnexpectedReply::new("deduct", replies);
            tracing::error!(error.message = %e, "deduct batch answered with the wrong number of replies");
            for p in batch {
                let _ = p.reply.send(Err(e.clone().into()));
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.reply.send(Err(StockError::Redis(e.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{metrics::Metrics, stock::scripts::ScriptKind};

    fn pending(registry: &ScriptRegistry, item_id: u64, version: &str) -> Pending {
        let script = registry.get(ScriptKind::Deduct, version).unwrap().clone();
        Pending {
            sale_id: 1,
            item_id,
            script,
            user: "u".into(),
            quantity: 1,
            order_id: Uuid::now_v7(),
            payload: Vec::new(),
            idempotency_key: None,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_takes_the_oldest_items_requests_and_keeps_the_rest_in_order() {
        let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
        let mut queue: VecDeque<Pending> = [1, 2, 1, 3, 1, 2]
            .into_iter()
            .map(|item| pending(&registry, item, "v2"))
            .collect();
        let batch = take_batch(&mut queue);
        assert_eq!(
            batch.iter().map(|p| p.item_id).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        assert_eq!(
            queue.iter().map(|p| p.item_id).collect::<Vec<_>>(),
            [2, 3, 2]
        );
        assert_eq!(take_batch(&mut queue).len(), 2);
        assert_eq!(take_batch(&mut queue).len(), 1);
        assert!(take_batch(&mut queue).is_empty());
    }

    #[test]
    fn a_batch_never_mixes_scripts_and_never_exceeds_the_maximum() {
        let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
        let mut queue: VecDeque<Pending> = (0..MAX_BATCH + 10)
            .map(|i| pending(&registry, 7, if i == 1 { "v1" } else { "v2" }))
            .collect();
        let batch = take_batch(&mut queue);
        assert_eq!(batch.len(), MAX_BATCH);
        assert!(batch.iter().all(|p| p.script.label == "deduct.v2"));
        assert_eq!(queue.len(), 10);
        assert_eq!(
            queue[0].script.label, "deduct.v1",
            "the other script keeps its place"
        );
    }
}
