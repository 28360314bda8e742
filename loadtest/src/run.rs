//! The load itself: workers, each with its own connection and histogram, in open or closed
//! loop; merged at the end.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use http::HeaderValue;

use crate::{
    args::{Mode, Plan},
    client::{Conn, RequestTemplate},
    outcome::{Counts, Outcome},
};

/// Live counters for the progress bar.
#[derive(Default)]
pub struct Progress {
    /// Requests answered (any outcome).
    pub done: AtomicU64,
    /// 2xx answers.
    pub reserved: AtomicU64,
    /// Non-2xx answers and failures.
    pub other: AtomicU64,
}

/// What the load produced.
pub struct LoadResult {
    /// Outcome counts.
    pub counts: Counts,
    /// Latencies in microseconds.
    pub latency_us: Histogram<u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Order ids of the reservations, when asked to collect them.
    pub order_ids: Vec<String>,
}

/// Who sends request `i`: a well-mixed function of `i`, so users spread evenly.
pub fn user_of(i: u64, users: u64) -> u64 {
    // splitmix64
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % users
}

struct Shared {
    next: AtomicU64,
    stop: AtomicBool,
    start: Instant,
}

/// Runs the plan against `addr`. `tokens[user]` authorises user `user` (empty: no header).
pub async fn run_load(
    plan: &Plan,
    addr: SocketAddr,
    template: RequestTemplate,
    tokens: Arc<Vec<HeaderValue>>,
    progress: Arc<Progress>,
) -> LoadResult {
    let workers = match plan.mode {
        Mode::OpenLoop { connections, .. } => connections,
        Mode::ClosedLoop { concurrency } => concurrency,
    };
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        start: Instant::now(),
    });
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (shared, template, tokens, progress) = (
            shared.clone(),
            template.clone(),
            tokens.clone(),
            progress.clone(),
        );
        let plan = plan.clone();
        handles.push(tokio::spawn(async move {
            worker(&plan, addr, &template, &tokens, &shared, &progress).await
        }));
    }
    let mut counts = Counts::default();
    let mut latency_us = new_histogram();
    let mut order_ids = Vec::new();
    for h in handles {
        if let Ok((c, hist, ids)) = h.await {
            counts.merge(&c);
            let _ = latency_us.add(&hist);
            order_ids.extend(ids);
        }
    }
    LoadResult {
        counts,
        latency_us,
        elapsed: shared.start.elapsed(),
        order_ids,
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

async fn worker(
    plan: &Plan,
    addr: SocketAddr,
    template: &RequestTemplate,
    tokens: &[HeaderValue],
    shared: &Shared,
    progress: &Progress,
) -> (Counts, Histogram<u64>, Vec<String>) {
    let mut counts = Counts::default();
    let mut hist = new_histogram();
    let mut conn: Option<Conn> = None;
    let timeout = plan.args.timeout;
    // Order ids only when a later step needs them (the hot loop allocates nothing otherwise).
    let collect = plan.args.pay_share.is_some();
    let mut ids = Vec::new();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if plan.requests.is_some_and(|n| i >= n) {
            break;
        }
        // When the request should start: now (closed loop) or on the rate's schedule.
        let intended = match plan.mode {
            Mode::OpenLoop { rate, .. } => {
                let at =
                    shared.start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
                if plan.duration.is_some_and(|d| at - shared.start >= d) {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                at
            }
            Mode::ClosedLoop { .. } => {
                let now = Instant::now();
                if plan.duration.is_some_and(|d| now - shared.start >= d) {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
                now
            }
        };
        let auth = (!tokens.is_empty()).then(|| &tokens[user_of(i, tokens.len() as u64) as usize]);
        let outcome = match conn.as_mut() {
            Some(c) => send(c, template, auth, timeout).await,
            None => match Conn::connect(addr).await {
                Ok(mut c) => {
                    let o = send(&mut c, template, auth, timeout).await;
                    conn = Some(c);
                    o
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(Outcome::Error)
                }
            },
        };
        let outcome = match outcome {
            Ok((status, body)) => {
                let o = Outcome::classify(status, &body);
                if collect
                    && o == Outcome::Reserved
                    && let Some(id) = order_id_of(&body)
                {
                    ids.push(id);
                }
                o
            }
            Err(o) => {
                conn = None; // broken or timed out: a new connection for the next request
                o
            }
        };
        let micros = intended.elapsed().as_micros().max(1) as u64;
        let _ = hist.record(micros.min(120_000_000));
        counts.add(outcome);
        progress.done.fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Reserved {
            progress.reserved.fetch_add(1, Ordering::Relaxed);
        } else {
            progress.other.fetch_add(1, Ordering::Relaxed);
        }
    }
    (counts, hist, ids)
}

/// The `order_id` of a reservation's body.
fn order_id_of(body: &[u8]) -> Option<String> {
    const FIELD: &[u8] = br#""order_id":""#;
    let at = body.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let id = body.get(at..at + 36)?;
    std::str::from_utf8(id).ok().map(str::to_string)
}

async fn send(
    conn: &mut Conn,
    template: &RequestTemplate,
    auth: Option<&HeaderValue>,
    timeout: Duration,
) -> Result<(u16, bytes::Bytes), Outcome> {
    match tokio::time::timeout(timeout, conn.send(template, auth)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(Outcome::Error),
        Err(_) => Err(Outcome::Timeout),
    }
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
}
