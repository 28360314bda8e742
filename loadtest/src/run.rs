//! The load itself: workers, each with its own connection, in open or closed loop, recording
//! every finished request into [`Recorder`].
//!
//! Open loop: request `i` is due at `start + i / rate`. A worker claims the next request,
//! sleeps until it is due and sends it. When every connection is busy at a request's due time,
//! the request waits for the first free one: it is never dropped, its latency counts from its
//! due time (no coordinated omission), and it counts as *late* when it was claimed more than
//! [`LATE_AFTER`] after it was due. Timer jitter of an idle worker is not lateness.
//!
//! Retries (`--retry-on`): a buy answered with one of the listed statuses is sent again after
//! the answer's `Retry-After` (capped at [`RETRY_WAIT_CAP`]; [`FIRST_RETRY_WAIT`], doubling,
//! without one), at most [`MAX_ATTEMPTS`] attempts in all, with the same `Idempotency-Key`
//! (`--idempotency-keys`). A buy and its retries count as one request, its latency running to
//! its last answer.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use http::HeaderValue;

use crate::{
    args::{Mode, Plan},
    client::{Answer, Conn, RequestTemplate},
    errors::ErrorCause,
    outcome::Outcome,
    stats::{Record, Recorder},
};

/// A request claimed later than this after its due time started late.
pub(crate) const LATE_AFTER: Duration = Duration::from_millis(1);
/// Attempts per buy under `--retry-on`, the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 5;
/// Longest wait before a retry, whatever `Retry-After` says.
pub(crate) const RETRY_WAIT_CAP: Duration = Duration::from_secs(2);
/// Wait before the first retry when the answer has no `Retry-After` (doubling after).
pub(crate) const FIRST_RETRY_WAIT: Duration = Duration::from_millis(100);
/// How long an interrupted run waits for the requests in flight before abandoning them.
pub(crate) const INTERRUPT_GRACE: Duration = Duration::from_secs(1);
/// Pause after a failed connect, so a closed port is not hammered in a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// What every worker sends.
pub(crate) struct Target {
    /// Where.
    pub addr: SocketAddr,
    /// The request.
    pub template: RequestTemplate,
    /// `tokens[user]` authorises user `user` (empty: no header).
    pub tokens: Vec<HeaderValue>,
    /// Makes this run's idempotency keys unique.
    pub run_id: u64,
}

/// How the load ended.
pub(crate) struct LoadEnd {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The cancellation fired before the plan was done.
    pub interrupted: bool,
    /// Requests still in flight when an interrupt gave up on them.
    pub abandoned: u64,
}

/// Who sends request `i`: a well-mixed function of `i`, so users spread evenly.
pub(crate) fn user_of(i: u64, users: u64) -> u64 {
    // splitmix64
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % users
}

/// The `Idempotency-Key` of buy `i` of run `run_id`: fresh per buy, the same for its retries.
pub(crate) fn idempotency_key(run_id: u64, i: u64) -> Option<HeaderValue> {
    HeaderValue::try_from(format!("lt-{run_id:016x}-{i}")).ok()
}

/// Shared by the workers.
pub(crate) struct Shared {
    next: AtomicU64,
    /// Set to stop claiming requests (duration over, or interrupted).
    pub stop: AtomicBool,
    start: Instant,
}

/// Runs the plan against the target until it is done or `cancel` completes; records into
/// `recorder`. `start` is the instant the run's clock counts from.
pub(crate) async fn run_load(
    plan: &Plan,
    target: Arc<Target>,
    recorder: Arc<Recorder>,
    start: Instant,
    cancel: impl Future<Output = ()>,
) -> LoadEnd {
    let workers = plan.mode.workers();
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        start,
    });
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (shared, target, recorder, plan) = (
            shared.clone(),
            target.clone(),
            recorder.clone(),
            plan.clone(),
        );
        set.spawn(async move { worker(w as usize, &plan, &target, &shared, &recorder).await });
    }
    let all_done = async { while set.join_next().await.is_some() {} };
    let interrupted = tokio::select! {
        () = all_done => false,
        () = cancel => true,
    };
    let mut abandoned = 0;
    if interrupted {
        shared.stop.store(true, Ordering::Relaxed);
        let drained = tokio::time::timeout(INTERRUPT_GRACE, async {
            while set.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            abandoned = recorder.in_flight.load(Ordering::Relaxed);
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }
    LoadEnd {
        elapsed: start.elapsed(),
        interrupted,
        abandoned,
    }
}

async fn worker(w: usize, plan: &Plan, target: &Target, shared: &Shared, recorder: &Recorder) {
    let mut conn: Option<Conn> = None;
    // Order ids only when a later step needs them (the hot loop allocates nothing otherwise).
    let collect = plan.args.pay_share.is_some() || plan.args.verify;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if plan.requests.is_some_and(|n| i >= n) {
            break;
        }
        // When the request should start: now (closed loop) or on the rate's schedule.
        let (intended, late_us) = match plan.mode {
            Mode::OpenLoop { rate, .. } => {
                let at =
                    shared.start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
                if plan.duration.is_some_and(|d| at - shared.start >= d) {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
                let behind = Instant::now().saturating_duration_since(at);
                tokio::time::sleep_until(at.into()).await;
                let late = (behind > LATE_AFTER).then_some(behind.as_micros() as u64);
                (at, late)
            }
            Mode::ClosedLoop { .. } => {
                let now = Instant::now();
                if plan.duration.is_some_and(|d| now - shared.start >= d) {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
                (now, None)
            }
        };
        recorder.in_flight.fetch_add(1, Ordering::Relaxed);
        let mut record = buy(plan, target, shared, &mut conn, i).await;
        record.latency_us = intended.elapsed().as_micros().max(1) as u64;
        record.late_us = late_us;
        if !collect {
            record.order_id = None;
        }
        recorder.record(w, record);
        recorder.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One logical request: the first attempt and its `--retry-on` retries.
async fn buy(
    plan: &Plan,
    target: &Target,
    shared: &Shared,
    conn: &mut Option<Conn>,
    i: u64,
) -> Record {
    let tokens = &target.tokens;
    let auth = (!tokens.is_empty()).then(|| &tokens[user_of(i, tokens.len() as u64) as usize]);
    let key = if plan.args.idempotency_keys {
        idempotency_key(target.run_id, i)
    } else {
        None
    };
    let mut record = Record::default();
    let mut attempt = 1;
    loop {
        let answer = send_once(target, conn, auth, key.as_ref(), plan.args.timeout).await;
        let outcome = match &answer {
            Ok(a) => Outcome::classify(a.status, &a.body),
            Err(ErrorCause::Timeout) => Outcome::Timeout,
            Err(cause) => Outcome::Error(*cause),
        };
        if outcome.cause().is_some_and(ErrorCause::fate_unknown) {
            record.uncertain += 1;
        }
        if let Ok(a) = &answer
            && plan.args.retry_on.contains(&a.status)
        {
            if attempt < MAX_ATTEMPTS && !shared.stop.load(Ordering::Relaxed) {
                let wait = a
                    .retry_after
                    .unwrap_or(FIRST_RETRY_WAIT * 2u32.pow(attempt - 1))
                    .min(RETRY_WAIT_CAP);
                pause(wait, shared).await;
                record.retried.push(a.status);
                attempt += 1;
                continue;
            }
            // Out of attempts (a buy cut short by the run's end is not giving up).
            record.gave_up = attempt >= MAX_ATTEMPTS;
        }
        if let Ok(a) = &answer {
            record.replayed = a.replayed;
            if outcome == Outcome::Reserved {
                record.order_id = order_id_of(&a.body);
            }
        }
        record.outcome = Some(outcome);
        return record;
    }
}

/// Sleeps `wait`, waking early when the run stops.
async fn pause(wait: Duration, shared: &Shared) {
    let until = Instant::now() + wait;
    while !shared.stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_millis(50))).await;
    }
}

/// One attempt on the worker's connection (opened first when there is none).
async fn send_once(
    target: &Target,
    conn: &mut Option<Conn>,
    auth: Option<&HeaderValue>,
    key: Option<&HeaderValue>,
    timeout: Duration,
) -> Result<Answer, ErrorCause> {
    if conn.is_none() {
        match tokio::time::timeout(timeout, Conn::connect(target.addr)).await {
            Ok(Ok(c)) => *conn = Some(c),
            Ok(Err(e)) => {
                tokio::time::sleep(CONNECT_BACKOFF).await;
                return Err(e.cause());
            }
            Err(_) => return Err(ErrorCause::ConnectFailed),
        }
    }
    let Some(c) = conn.as_mut() else {
        return Err(ErrorCause::ConnectFailed);
    };
    match tokio::time::timeout(timeout, c.send(&target.template, auth, key)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => {
            *conn = None; // broken: a new connection for the next request
            Err(e.cause())
        }
        Err(_) => {
            *conn = None; // the answer may still come on it: never reuse
            Err(ErrorCause::Timeout)
        }
    }
}

/// The `order_id` of a reservation's body.
fn order_id_of(body: &[u8]) -> Option<String> {
    const FIELD: &[u8] = br#""order_id":""#;
    let at = body.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let id = body.get(at..at + 36)?;
    std::str::from_utf8(id).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservations_order_id_is_found_in_its_body() {
        let body = br#"{"order_id":"01a21866-341b-754f-bc12-9a10c8e98c08","status":"reserved"}"#;
        assert_eq!(
            order_id_of(body).as_deref(),
            Some("01a21866-341b-754f-bc12-9a10c8e98c08")
        );
        assert_eq!(order_id_of(br#"{"code":"sold_out"}"#), None);
    }

    #[test]
    fn users_spread_over_the_whole_range() {
        let users = 100;
        let mut seen = std::collections::HashSet::new();
        for i in 0..2_000 {
            let u = user_of(i, users);
            assert!(u < users);
            seen.insert(u);
        }
        assert_eq!(seen.len(), 100);
    }

    #[test]
    fn idempotency_keys_are_unique_per_run_and_buy() {
        let a = idempotency_key(1, 7).unwrap();
        assert_eq!(a, "lt-0000000000000001-7");
        assert_ne!(a, idempotency_key(2, 7).unwrap());
        assert_ne!(a, idempotency_key(1, 8).unwrap());
    }
}
