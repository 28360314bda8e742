//! One simulated user of the queued sale: join (with a proof of work when asked), poll as
//! `Retry-After` says, buy once when admitted, stop on sold out, expiry or the buy's answer;
//! and what it saw, for the report.

use std::{
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Method};
use tokio::sync::Notify;

use super::{
    buy::{BuyEnd, Retrying, buy},
    pool::{Call, Pool},
    pow,
    protocol::{self, State, Status},
};
use crate::{
    errors::code_of,
    run::{MAX_ATTEMPTS, RETRY_WAIT_CAP},
};

/// What the users share: the pool, the sale, their tokens, the clock.
pub(crate) struct Crowd {
    /// The connections.
    pub pool: Pool,
    /// The sale.
    pub sale: u64,
    /// Its item.
    pub item: u64,
    /// `tokens[user]`: the user's `Authorization` header.
    pub tokens: Arc<Vec<HeaderValue>>,
    /// Makes this run's idempotency keys unique.
    pub key_run: u64,
    /// Zero bits of the proof of work a join carries up front (0: only when asked).
    pub pow_bits: u32,
    /// The crowd's clock starts here (the queued sale's creation).
    pub start: Instant,
    /// No request goes out after this.
    pub deadline: Instant,
    /// Set by an interrupt.
    pub interrupted: Arc<Interrupt>,
}

/// An interrupt (Ctrl-C): a flag, and a wake-up for the users sleeping in [`Crowd::pause`].
#[derive(Default)]
pub(crate) struct Interrupt {
    set: AtomicBool,
    wake: Notify,
}

impl Interrupt {
    /// Sets the flag and wakes every sleeping user.
    pub(crate) fn raise(&self) {
        self.set.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    /// True once raised.
    pub(crate) fn is_raised(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }
}

impl Crowd {
    /// True once interrupted or past the deadline.
    pub(crate) fn stopped(&self) -> bool {
        self.interrupted.is_raised() || Instant::now() >= self.deadline
    }

    /// Sleeps `wait`, waking early when the crowd stops; false when it stopped. One timer per
    /// pause: a hundred thousand sleeping users must not wake the client's timer wheel more
    /// often than they poll.
    pub(crate) async fn pause(&self, wait: Duration) -> bool {
        let woken = self.interrupted.wake.notified();
        let mut woken = pin!(woken);
        woken.as_mut().enable();
        if self.stopped() {
            return false;
        }
        let until = (Instant::now() + wait).min(self.deadline);
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => !self.stopped(),
            () = woken => false,
        }
    }

    /// `t` on the crowd's clock.
    pub(crate) fn at(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }
}

/// Requests a user sent, by kind (retries included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Requests {
    /// Proof-of-work challenges fetched.
    pub challenge: u64,
    /// Joins.
    pub join: u64,
    /// Polls.
    pub poll: u64,
    /// Buys.
    pub buy: u64,
}

impl Requests {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.challenge + self.join + self.poll + self.buy
    }

    /// These and `other`, kind by kind.
    pub(crate) fn plus(self, other: &Requests) -> Requests {
        Requests {
            challenge: self.challenge + other.challenge,
            join: self.join + other.join,
            poll: self.poll + other.poll,
            buy: self.buy + other.buy,
        }
    }
}

/// How a user's visit ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still going when the crowd stopped.
    #[default]
    Unfinished,
    /// Bought a unit (202).
    Reserved,
    /// Told the stock is gone (by the join, a poll or the buy).
    SoldOut,
    /// The admission lapsed.
    Expired,
    /// A final refusal: where (`join`, `poll`, `buy`), status and code.
    Refused(String),
    /// No answer, attempt after attempt, or an answer that makes no sense.
    Failed,
}

/// What one user saw (times on the crowd's clock).
#[derive(Debug, Clone, Default)]
pub(crate) struct UserRecord {
    /// Scheduled to join before the start.
    pub pre_queue: bool,
    /// The join that got a ticket went out then…
    pub join_sent: Option<Duration>,
    /// …and was answered then.
    pub join_answered: Option<Duration>,
    /// The join's answer had no position (the pre-queue, before the draw).
    pub joined_undrawn: bool,
    /// The last position an answer gave.
    pub position: Option<u64>,
    /// The admission token's `pos`.
    pub pos: Option<u64>,
    /// The admission token's `nbf` (server Unix seconds).
    pub nbf: Option<u64>,
    /// The answer that said `admitted` came then.
    pub admitted_at: Option<Duration>,
    /// The answer that said sold out came then.
    pub sold_out_at: Option<Duration>,
    /// The buy's 202 came then.
    pub reserved_at: Option<Duration>,
    /// Requests by kind.
    pub requests: Requests,
    /// How it ended.
    pub outcome: Outcome,
}

/// Attempts at a join (refused for a missing challenge, not open yet, busy, or no answer).
const JOIN_ATTEMPTS: u32 = 10;
/// Polls in a row that may go unanswered before the user gives up.
const POLL_FAILURES: u32 = 5;
/// The wait when an answer has no `Retry-After`.
const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// User `user` of the crowd, joining at `join_at`.
pub(crate) async fn live(
    crowd: &Crowd,
    user: u64,
    join_at: Instant,
    pre_queue: bool,
) -> UserRecord {
    let mut rec = UserRecord {
        pre_queue,
        ..UserRecord::default()
    };
    if !crowd
        .pause(join_at.saturating_duration_since(Instant::now()))
        .await
    {
        return rec;
    }
    let Some((status, wait)) = join(crowd, user, &mut rec).await else {
        return rec;
    };
    follow(crowd, user, &mut rec, status, wait).await;
    rec
}

/// Joins the queue; the answer and its `Retry-After`, or `None` with the outcome set.
async fn join(
    crowd: &Crowd,
    user: u64,
    rec: &mut UserRecord,
) -> Option<(Status, Option<Duration>)> {
    let auth = &crowd.tokens[user as usize];
    let mut proof = None;
    if crowd.pow_bits > 0 {
        proof = prove(crowd, auth, rec).await;
    }
    for _ in 0..JOIN_ATTEMPTS {
        let body = match &proof {
            Some((challenge, nonce)) => {
                serde_json::json!({"challenge": challenge, "nonce": nonce.to_string()})
            }
            None => serde_json::json!({}),
        };
        let call = Call {
            method: Method::POST,
            path: format!("/api/v1/sales/{}/queue", crowd.sale),
            body: Bytes::from(body.to_string()),
            headers: vec![("authorization", auth)],
        };
        let (sent, answer) = crowd.pool.send(call).await;
        rec.requests.join += 1;
        let wait = match answer {
            Ok(a) if a.status == 200 => {
                let status = protocol::status_of(&a.body);
                rec.join_sent = Some(crowd.at(sent));
                rec.join_answered = Some(crowd.at(Instant::now()));
                rec.joined_undrawn = status.as_ref().is_some_and(|s| s.position.is_none());
                return status.map(|s| (s, a.retry_after)).or_else(|| fail(rec));
            }
            Ok(a) => match (a.status, code_of(&a.body)) {
                (403, Some(b"challenge_required" | b"challenge_failed")) => {
                    proof = prove(crowd, auth, rec).await;
                    Some(Duration::ZERO)
                }
                (409, Some(b"queue_not_open")) | (429 | 503, _) => a.retry_after,
                (status, code) => {
                    rec.outcome = refusal("join", status, code);
                    return None;
                }
            },
            Err(_) => None,
        };
        if !crowd.pause(wait.unwrap_or(DEFAULT_WAIT)).await {
            return None;
        }
    }
    fail(rec)
}

/// Fetches a challenge and solves it: (challenge, nonce), or `None` when none came.
async fn prove(crowd: &Crowd, auth: &HeaderValue, rec: &mut UserRecord) -> Option<(String, u64)> {
    let call = Call {
        method: Method::GET,
        path: format!("/api/v1/sales/{}/queue/challenge", crowd.sale),
        body: Bytes::new(),
        headers: vec![("authorization", auth)],
    };
    let (_, answer) = crowd.pool.send(call).await;
    rec.requests.challenge += 1;
    let c = protocol::challenge_of(&answer.ok().filter(|a| a.status == 200)?.body)?;
    if c.bits > pow::MAX_BITS {
        return None; // beyond what a client can solve in a run
    }
    let nonce = tokio::task::spawn_blocking(move || (pow::solve(&c.challenge, c.bits), c))
        .await
        .ok()?;
    Some((nonce.1.challenge, nonce.0))
}

/// Follows the place from `status` to its end: polls while waiting, buys when admitted.
async fn follow(
    crowd: &Crowd,
    user: u64,
    rec: &mut UserRecord,
    mut status: Status,
    mut wait: Option<Duration>,
) {
    let ticket = status.ticket.clone().unwrap_or_default();
    let mut failures = 0;
    loop {
        rec.position = status.position.or(rec.position);
        match status.state {
            State::Waiting => {}
            State::Admitted => return admitted(crowd, user, rec, status.admission_token).await,
            State::SoldOut => {
                rec.sold_out_at = Some(crowd.at(Instant::now()));
                rec.outcome = Outcome::SoldOut;
                return;
            }
            State::Expired => {
                rec.outcome = Outcome::Expired;
                return;
            }
            State::Unknown => return rec.outcome = Outcome::Failed,
        }
        if !crowd.pause(wait.unwrap_or(DEFAULT_WAIT)).await {
            return;
        }
        let call = Call {
            method: Method::GET,
            path: format!("/api/v1/sales/{}/queue/{ticket}", crowd.sale),
            body: Bytes::new(),
            headers: Vec::new(),
        };
        let (_, answer) = crowd.pool.send(call).await;
        rec.requests.poll += 1;
        match answer {
            Ok(a) if a.status == 200 => match protocol::status_of(&a.body) {
                Some(s) => (status, wait, failures) = (s, a.retry_after, 0),
                None => return rec.outcome = Outcome::Failed,
            },
            Ok(a) if matches!(a.status, 429 | 503) => wait = a.retry_after,
            Ok(a) => return rec.outcome = refusal("poll", a.status, code_of(&a.body)),
            Err(_) if failures + 1 >= POLL_FAILURES => return rec.outcome = Outcome::Failed,
            Err(_) => (failures, wait) = (failures + 1, None),
        }
    }
}

/// Admitted: reads the token's claims and buys once.
async fn admitted(crowd: &Crowd, user: u64, rec: &mut UserRecord, token: Option<String>) {
    rec.admitted_at = Some(crowd.at(Instant::now()));
    let claims = token.as_deref().and_then(protocol::admission_of);
    let header = token.as_deref().and_then(|t| HeaderValue::from_str(t).ok());
    let (Some(claims), Some(header)) = (claims, header) else {
        rec.outcome = Outcome::Failed;
        return;
    };
    (rec.pos, rec.nbf) = (Some(claims.pos), Some(claims.nbf));
    let retrying = Retrying {
        attempts: MAX_ATTEMPTS,
        cap: RETRY_WAIT_CAP,
    };
    let end = buy(
        crowd,
        user,
        Some(&header),
        crowd.key_run,
        retrying,
        &mut rec.requests.buy,
    )
    .await;
    let now = Some(crowd.at(Instant::now()));
    rec.outcome = match end {
        BuyEnd::Reserved => {
            rec.reserved_at = now;
            Outcome::Reserved
        }
        BuyEnd::SoldOut => {
            rec.sold_out_at = now;
            Outcome::SoldOut
        }
        BuyEnd::Refused(why) => Outcome::Refused(format!("buy {why}")),
        BuyEnd::Failed => Outcome::Failed,
        BuyEnd::Stopped => Outcome::Unfinished,
    };
}

/// Ends the visit as failed.
fn fail<T>(rec: &mut UserRecord) -> Option<T> {
    rec.outcome = Outcome::Failed;
    None
}

/// A final refusal at step `at`.
fn refusal(at: &str, status: u16, code: Option<&[u8]>) -> Outcome {
    Outcome::Refused(match code {
        Some(c) => format!("{at} {status} {}", String::from_utf8_lossy(c)),
        None => format!("{at} {status}"),
    })
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
