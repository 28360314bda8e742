//! Gathers concurrent reservations of one item into one call of a batching deduct script.
//!
//! In a flash sale nearly every buy hits the same item. Rather than a Redis round trip and a
//! script run per buy, each request is queued on a lane (items are spread over a few lanes),
//! and the lane sends what is queued for an item as one call whenever fewer than
//! [`MAX_IN_FLIGHT_PER_ITEM`] calls for that item are outstanding. Nothing waits on a timer: at
//! low load a batch holds one request and costs one channel hop; in a stampede a batch holds the
//! requests that arrived while the item's previous call was in flight. The script applies the
//! requests in batch order, each with exactly the checks it would get alone, so batching
//! changes cost, not answers.
//!
//! A queued request is sent only while somebody still waits for it: one whose caller gave up
//! (timeout, client gone) is dropped before it reaches Redis, and one that waited longer than
//! [`QUEUE_DEADLINE`] is answered "busy" without reserving anything. Each lane's queue is
//! bounded ([`LANE_QUEUE`]); beyond it a request is answered "busy" at once.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use redis::Value;
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot,
};
use uuid::Uuid;

use super::{
    DeductOutcome, DeductRequest, StockError, UnexpectedReply,
    scripts::{ReplicaWait, VersionedScript},
};
use crate::{
    domain::script_version::has_compact_ledger,
    stock::ScriptRegistry,
    stores::redis::{
        RedisPool,
        keys::{Holder, Keys},
    },
};

/// Lanes, each a task with its own queue: enough that a few hot items do not share one
/// queue, few enough that each lane's batches stay full.
const LANES: usize = 4;
/// Most requests in one script call: a batch of this size runs in well under a millisecond,
/// so Redis never stalls other clients noticeably.
pub(crate) const MAX_BATCH: usize = 256;
/// Calls outstanding for one item at once: two, so one batch fills while the other runs.
const MAX_IN_FLIGHT_PER_ITEM: usize = 2;
/// Requests one lane holds before it answers "busy": about 30 full batches, far more than
/// arrive during one round trip even in a stampede.
const LANE_QUEUE: usize = 8192;
/// Longest a request waits in a queue before it is answered "busy" instead of being sent (the
/// same bound a Redis call has): a client that waited this long has likely given up.
pub(crate) const QUEUE_DEADLINE: Duration = Duration::from_secs(2);

/// One queued request and where its answer goes.
struct Pending {
    sale_id: u64,
    item_id: u64,
    holder: Holder,
    sale_uid: String,
    script: Arc<VersionedScript>,
    user: String,
    quantity: u32,
    order_id: Uuid,
    /// What the ledger stores beside the order id: the payload, or (compact ledger) the
    /// reservation time in base 36.
    record: Vec<u8>,
    idempotency_key: Option<String>,
    queued_at: Instant,
    reply: oneshot::Sender<Result<DeductOutcome, StockError>>,
}

/// The requests one script call may carry together: same item, same deduct script version.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct BatchKey {
    sale_id: u64,
    item_id: u64,
    holder: Holder,
    version: &'static str,
}

impl Pending {
    fn key(&self) -> BatchKey {
        BatchKey {
            sale_id: self.sale_id,
            item_id: self.item_id,
            holder: self.holder,
            version: self.script.version,
        }
    }
}

/// What every lane needs to call Redis.
#[derive(Clone)]
struct LaneContext {
    redis: RedisPool,
    keys: Keys,
    scripts: Arc<ScriptRegistry>,
    /// One `WAIT` per batch when reservations must reach replicas before they count.
    replicas: Option<ReplicaWait>,
}

/// The lanes of one stock service, started on first use (inside the runtime that serves) and
/// started again if one has stopped.
pub(crate) struct DeductBatcher {
    context: LaneContext,
    lanes: RwLock<Vec<mpsc::Sender<Pending>>>,
}

impl DeductBatcher {
    /// A batcher calling `scripts` on `redis` with keys from `keys`; with `replicas`, each
    /// batch is followed by one `WAIT`.
    pub fn new(
        redis: RedisPool,
        keys: Keys,
        scripts: Arc<ScriptRegistry>,
        replicas: Option<ReplicaWait>,
    ) -> Self {
        Self {
            context: LaneContext {
                redis,
                keys,
                scripts,
                replicas,
            },
            lanes: RwLock::new(Vec::new()),
        }
    }

    /// Queues `req` for `script` (a batching script) and waits for its own reply.
    ///
    /// # Errors
    /// Redis failed for the batch, its reply broke the script's contract, or the lane was too
    /// busy to take the request.
    pub async fn deduct(
        &self,
        script: &Arc<VersionedScript>,
        req: &DeductRequest<'_>,
    ) -> Result<DeductOutcome, StockError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            sale_id: req.sale_id,
            item_id: req.item_id,
            holder: req.holder(),
            sale_uid: req.sale_uid.to_owned(),
            script: script.clone(),
            user: req.user_id.to_owned(),
            quantity: req.quantity,
            order_id: req.order_id,
            record: if has_compact_ledger(script.version) {
                crate::stock::compact::base36(req.reserved_at_ms).into_bytes()
            } else {
                req.payload.to_vec()
            },
            idempotency_key: req.idempotency_key.map(str::to_owned),
            queued_at: Instant::now(),
            reply,
        };
        // A sharded item's shards go to different lanes, as different items do.
        let shard = match pending.holder {
            Holder::Shard { index, .. } => u64::from(index),
            Holder::Whole | Holder::Central => 0,
        };
        let lane = (req.item_id.wrapping_add(shard) % LANES as u64) as usize;
        self.enqueue(lane, pending)?;
        answer.await.unwrap_or(Err(StockError::Stopped))
    }

    fn enqueue(&self, lane: usize, pending: Pending) -> Result<(), StockError> {
        let sent = {
            let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
            match lanes.get(lane) {
                Some(tx) => tx.try_send(pending),
                None => Err(TrySendError::Closed(pending)), // not started yet
            }
        };
        match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StockError::Busy),
            Err(TrySendError::Closed(pending)) => self.start_and_enqueue(lane, pending),
        }
    }

    /// Starts the lanes (all on first use; one whose task has ended, again) and queues.
    fn start_and_enqueue(&self, lane: usize, pending: Pending) -> Result<(), StockError> {
        let mut lanes = self.lanes.write().unwrap_or_else(|e| e.into_inner());
        if lanes.is_empty() {
            *lanes = (0..LANES).map(|_| self.spawn_lane()).collect();
        }
        if lanes[lane].is_closed() {
            tracing::warn!(lane, "a stock batching lane had stopped; starting it again");
            lanes[lane] = self.spawn_lane();
        }
        match lanes[lane].try_send(pending) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StockError::Busy),
            Err(TrySendError::Closed(_)) => Err(StockError::Stopped),
        }
    }

    fn spawn_lane(&self) -> mpsc::Sender<Pending> {
        let (tx, rx) = mpsc::channel(LANE_QUEUE);
        tokio::spawn(run_lane(rx, self.context.clone()));
        tx
    }
}

/// A lane: takes requests, keeps up to [`MAX_IN_FLIGHT_PER_ITEM`] calls outstanding per item,
/// until every sender is gone and nothing is left.
async fn run_lane(mut rx: mpsc::Receiver<Pending>, context: LaneContext) {
    let mut queue = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let mut busy: HashMap<BatchKey, usize> = HashMap::new();
    let mut open = true;
    loop {
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(p) => queue.push_back(p),
                None => open = false,
            },
            Some(key) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(n) = busy.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        busy.remove(&key);
                    }
                }
            }
        }
        while let Ok(p) = rx.try_recv() {
            queue.push_back(p);
        }
        let now = Instant::now();
        while let Some(batch) = take_batch(&mut queue, now, |key| {
            busy.get(key).copied().unwrap_or(0) < MAX_IN_FLIGHT_PER_ITEM
        }) {
            let key = batch[0].key();
            *busy.entry(key).or_insert(0) += 1;
            in_flight.push(call(context.clone(), key, batch));
        }
        if !open && queue.is_empty() && in_flight.is_empty() {
            break;
        }
    }
}

/// Takes the oldest request whose item may have another call outstanding, and every later one
/// for the same item and script (up to [`MAX_BATCH`]), keeping the others in order. On the way
/// it drops requests nobody waits for any more and answers "busy" to those queued longer than
/// [`QUEUE_DEADLINE`] (as of `now`): neither reaches Redis.
fn take_batch(
    queue: &mut VecDeque<Pending>,
    now: Instant,
    may_send: impl Fn(&BatchKey) -> bool,
) -> Option<Vec<Pending>> {
    // In a stampede the item is usually at its in-flight limit and the lane wakes for every
    // arrival: look before moving anything, so such a wake costs a scan, not a rebuild.
    let mut last_refused = None;
    let worth_a_pass = queue.iter().any(|p| {
        if p.reply.is_closed() || now.duration_since(p.queued_at) > QUEUE_DEADLINE {
            return true;
        }
        let key = p.key();
        if last_refused == Some(key) {
            return false;
        }
        let ok = may_send(&key);
        if !ok {
            last_refused = Some(key);
        }
        ok
    });
    if !worth_a_pass {
        return None;
    }
    let mut batch: Vec<Pending> = Vec::new();
    let mut key = None;
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(p) = queue.pop_front() {
        if p.reply.is_closed() {
            continue;
        }
        if now.duration_since(p.queued_at) > QUEUE_DEADLINE {
            let _ = p.reply.send(Err(StockError::Busy));
            continue;
        }
        let fits = match key {
            None if may_send(&p.key()) => {
                key = Some(p.key());
                true
            }
            None => false,
            Some(k) => p.key() == k && batch.len() < MAX_BATCH,
        };
        if fits {
            batch.push(p);
        } else {
            rest.push_back(p);
        }
    }
    *queue = rest;
    (!batch.is_empty()).then_some(batch)
}

/// Runs one batch and hands each request its reply; yields the batch's key when done.
async fn call(context: LaneContext, key: BatchKey, batch: Vec<Pending>) -> BatchKey {
    let Some(first) = batch.first() else {
        return key;
    };
    let script = first.script.clone();
    let keys = context.keys.holder(
        first.sale_id,
        first.item_id,
        crate::stock::key_uid(script.version, &first.sale_uid),
        first.holder,
    );
    context
        .scripts
        .metrics()
        .scripts
        .deduct_batch_size
        .observe(batch.len() as f64);
    let mut conn = context.redis.get();
    let compact = has_compact_ledger(script.version);
    let args = |cmd: &mut redis::Cmd| {
        cmd.arg(&first.sale_uid).arg(batch.len());
        for p in &batch {
            let mut buf = Uuid::encode_buffer();
            cmd.arg(&p.user).arg(p.quantity);
            if compact {
                cmd.arg(p.order_id.as_bytes());
            } else {
                cmd.arg(&*p.order_id.hyphenated().encode_lower(&mut buf));
            }
            cmd.arg(&p.record)
                .arg(p.idempotency_key.as_deref().unwrap_or(""));
        }
    };
    let script_keys = keys.as_script_keys();
    // With replicas, one WAIT covers the whole batch: the replies, and (acknowledged, wanted).
    type Replies = (Vec<Value>, Option<(u32, u32)>);
    let result: redis::RedisResult<Replies> = match context.replicas {
        None => script
            .invoke(&mut conn, &script_keys, args)
            .await
            .map(|r| (r, None)),
        Some(wait) => script
            .invoke_replicated(&mut conn, &script_keys, args, wait)
            .await
            .map(|(r, acked)| (r, Some((acked, wait.replicas)))),
    };
    match result {
        Ok((replies, acks)) if replies.len() == batch.len() => {
            for (p, reply) in batch.into_iter().zip(replies) {
                let outcome = match reply {
                    Value::Array(reply) => DeductOutcome::from_batch_reply(reply, p.order_id)
                        .map(|o| match acks {
                            Some((acked, wanted)) => o.confirmed_by(acked, wanted, p.quantity),
                            None => o,
                        })
                        .map_err(Into::into),
                    other => Err(UnexpectedReply::new("deduct", vec![other]).into()),
                };
                let _ = p.reply.send(outcome);
            }
        }
        Ok((replies, _)) => {
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
    key
}

#[cfg(test)]
mod tests;
