//! The waiting room in front of a queued sale: buyers join and get a signed ticket, poll it
//! (answered from memory on any instance), and are admitted with a signed admission token at
//! the sale's rate, never beyond `max_active` admitted-but-unbought buyers nor beyond the stock
//! left × the overbooking factor. One leader, the usher, moves "now serving" forward; every
//! instance reads its board at most once a second.
//!
//! Redis holds, per sale under the hash tag `{q<sale>}`: the join counters and the pre-queue
//! draw, 16,384 bucketed hashes of user digest (8 bytes) → place, the finished buyers, and the
//! board. Joins run `lua/queue_join.v1.lua`; the usher reads with `lua/queue_state.v1.lua`.

pub mod admission_token;
pub mod board;
pub mod challenge;
mod error;
mod finished;
mod join;
mod rooms;
pub mod shuffle;
pub mod ticket;
mod usher;
mod view;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::MySqlPool;

pub use admission_token::{AdmissionClaims, AdmissionError, AdmissionKeys};
pub use board::State;
pub use error::QueueError;
pub use view::QueueView;

use self::{
    board::{Board, Clock, Standing},
    challenge::ChallengeKey,
    rooms::{Room, Rooms},
    ticket::{Place, Ticket, TicketKey},
};
use crate::{
    buy::gate::SoldOutFlags,
    observe::metrics::Metrics,
    stores::redis::{RedisPool, keys::Keys, script::Script},
};

/// A MAC keyed for one purpose, derived from the service's secret.
pub(crate) fn derived_mac(secret: &[u8], purpose: &[u8]) -> Hmac<Sha256> {
    const ANY_LENGTH: &str = "HMAC takes a key of any length";
    let mut root = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect(ANY_LENGTH);
    root.update(purpose);
    let key = root.finalize().into_bytes();
    <Hmac<Sha256> as Mac>::new_from_slice(&key).expect(ANY_LENGTH)
}

/// The answer to a join or a poll.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueAnswer {
    /// The ticket to poll with (absent when the join found the sale sold out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Where the ticket stands.
    pub state: State,
    /// Place in the queue, 0-based; `null` in the pre-queue until the draw at the start.
    pub position: Option<u64>,
    /// Places ahead still waiting.
    pub ahead: Option<u64>,
    /// Positions below this have been admitted.
    pub now_serving: u64,
    /// Estimated seconds until admission.
    pub eta_secs: Option<u64>,
    /// The admission token (when admitted): send it as `X-Admission-Token` with the buy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    /// Seconds until the next poll, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after_secs: u64,
}

impl QueueAnswer {
    /// The answer as JSON, written directly: every string in it is a ticket, a token or a
    /// state name (URL-safe base64, JWT and snake_case characters), so nothing needs escaping,
    /// and a poll must cost little more than a health check (formatting machinery showed in
    /// its profile).
    pub fn to_json(&self) -> String {
        fn num(s: &mut String, key: &str, v: Option<u64>) {
            s.push_str(",\"");
            s.push_str(key);
            s.push_str("\":");
            match v {
                Some(v) => push_u64(s, v),
                None => s.push_str("null"),
            }
        }
        let strings = self.ticket.as_ref().map_or(0, String::len)
            + self.admission_token.as_ref().map_or(0, String::len);
        let mut s = String::with_capacity(112 + strings);
        s.push('{');
        if let Some(t) = &self.ticket {
            s.push_str("\"ticket\":\"");
            s.push_str(t);
            s.push_str("\",");
        }
        s.push_str("\"state\":\"");
        s.push_str(self.state.name());
        s.push('"');
        num(&mut s, "position", self.position);
        num(&mut s, "ahead", self.ahead);
        num(&mut s, "now_serving", Some(self.now_serving));
        num(&mut s, "eta_secs", self.eta_secs);
        if let Some(t) = &self.admission_token {
            s.push_str(",\"admission_token\":\"");
            s.push_str(t);
            s.push('"');
        }
        s.push('}');
        s
    }
}

/// Appends `v` in decimal.
fn push_u64(s: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    s.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// A proof-of-work challenge.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChallengeOut {
    /// Find a nonce (a decimal number) such that SHA-256 of `challenge:nonce` starts with
    /// `bits` zero bits, and send both with the join.
    pub challenge: String,
    /// Leading zero bits required.
    pub bits: u8,
    /// Seconds the challenge stays valid.
    pub expires_in_secs: u64,
}

/// The waiting rooms of every queued sale.
#[derive(Clone)]
pub struct WaitingRoom {
    inner: Arc<Inner>,
}

struct Inner {
    db: MySqlPool,
    redis: RedisPool,
    keys: Keys,
    grace_secs: i64,
    tickets: TicketKey,
    challenges: ChallengeKey,
    admissions: AdmissionKeys,
    join: Script,
    state: Script,
    rooms: Rooms,
    finished: Mutex<Vec<finished::Finished>>,
    metrics: Arc<Metrics>,
}

/// What a waiting room is built from.
pub struct RoomParts {
    /// MySQL (sale terms).
    pub db: MySqlPool,
    /// Redis (the rooms).
    pub redis: RedisPool,
    /// Key names.
    pub keys: Keys,
    /// Seconds a sale's keys outlive its end.
    pub grace_secs: u64,
    /// The secret tickets, challenges and admissions are signed with (keys derived apart).
    pub secret: Vec<u8>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl WaitingRoom {
    /// The waiting rooms over these parts.
    pub fn new(parts: RoomParts) -> Self {
        let metrics = parts.metrics;
        Self {
            inner: Arc::new(Inner {
                join: Script::new(
                    "queue_join.v1".into(),
                    include_str!("../../../lua/queue_join.v1.lua"),
                    &metrics,
                ),
                state: Script::new(
                    "queue_state.v1".into(),
                    include_str!("../../../lua/queue_state.v1.lua"),
                    &metrics,
                ),
                db: parts.db,
                redis: parts.redis,
                keys: parts.keys,
                grace_secs: i64::try_from(parts.grace_secs.max(1)).unwrap_or(i64::MAX),
                tickets: TicketKey::derive(&parts.secret),
                challenges: ChallengeKey::derive(&parts.secret),
                admissions: AdmissionKeys::derive(&parts.secret),
                rooms: Rooms::default(),
                finished: Mutex::default(),
                metrics,
            }),
        }
    }

    /// A buy found `sale_id` sold out: when every item of the sale is flagged so, polls on this
    /// instance answer `sold_out` at once, before the usher's board says it.
    pub fn heard_sold_out(&self, sale_id: u64, flags: &SoldOutFlags) {
        if let Some(room) = self.inner.rooms.held(sale_id)
            && room
                .terms
                .items
                .iter()
                .all(|i| flags.is_sold_out(i.item_id))
        {
            room.hear_sold_out();
        }
    }

    /// The admission keys the buy path verifies with.
    pub fn admissions(&self) -> &AdmissionKeys {
        &self.inner.admissions
    }

    async fn room(&self, sale_id: u64, now_ms: i64) -> Result<Arc<Room>, QueueError> {
        let keys = &self.inner.keys;
        let rooms = &self.inner.rooms;
        rooms
            .get(
                &self.inner.db,
                |terms| keys.room(terms.sale_id, terms.key_uid),
                sale_id,
                now_ms,
            )
            .await
    }

    /// A proof-of-work challenge for `user` joining `sale_id`.
    ///
    /// # Errors
    /// No such sale, or an open one.
    pub async fn challenge(&self, sale_id: u64, user: &str) -> Result<ChallengeOut, QueueError> {
        let room = self.room(sale_id, Utc::now().timestamp_millis()).await?;
        let now = Utc::now().timestamp().max(0) as u64;
        Ok(ChallengeOut {
            challenge: self.inner.challenges.issue(sale_id, user, now),
            bits: room.terms.admission.pow_bits,
            expires_in_secs: challenge::CHALLENGE_TTL_SECS,
        })
    }

    /// Where `raw`'s ticket stands, from memory.
    ///
    /// # Errors
    /// Not a ticket of this sale, no such sale.
    pub async fn poll(&self, sale_id: u64, raw: &str) -> Result<QueueAnswer, QueueError> {
        let ticket = self
            .inner
            .tickets
            .decode(raw)
            .filter(|t| t.sale_id == sale_id)
            .ok_or(QueueError::UnknownTicket)?;
        // One clock read serves the room, the board and the answer.
        let now_ms = Utc::now().timestamp_millis();
        let redis = &self.inner.redis;
        let from_memory = self.inner.rooms.with_fresh(sale_id, now_ms, |room| {
            room.with_board(redis, now_ms, |b| {
                self.answer(room, b, &ticket, None, now_ms)
            })
        });
        let answer = match from_memory.flatten() {
            Some(answer) => answer,
            None => Box::pin(self.poll_after_reading(sale_id, &ticket, now_ms)).await?,
        };
        self.inner.metrics.queue.polls[answer.state.index()].inc();
        Ok(answer)
    }

    /// A poll whose room's terms or board must be read first (the first on this instance, or
    /// one after a quiet spell).
    async fn poll_after_reading(
        &self,
        sale_id: u64,
        ticket: &Ticket,
        now_ms: i64,
    ) -> Result<QueueAnswer, QueueError> {
        let room = self.room(sale_id, now_ms).await?;
        let board = room.with_draw(room.board(&self.inner.redis, now_ms).await);
        Ok(self.answer(&room, &board, ticket, None, now_ms))
    }

    /// The answer for a ticket on a board, with an admission token when admitted.
    fn answer(
        &self,
        room: &Room,
        board: &Board,
        t: &Ticket,
        raw: Option<String>,
        now_ms: i64,
    ) -> QueueAnswer {
        let terms = &room.terms;
        let clock = Clock {
            now: now_ms.div_euclid(1000),
            starts_at: terms.starts_at.timestamp(),
            ends_at: terms.ends_at.timestamp(),
            ttl: i64::from(terms.admission.admission_ttl_secs),
            admit_per_sec: terms.admission.admit_per_sec,
            overbooking: terms.admission.overbooking,
        };
        let mut s: Standing = board.standing(t.place, &clock);
        if s.state == State::Waiting && room.heard_sold_out() {
            s.state = State::SoldOut;
        }
        let admission_token = match (s.state, s.admitted_at, s.position) {
            (State::Admitted, Some(at), Some(pos)) => Some(self.mint(room, t, at, pos, clock.ttl)),
            _ => None,
        };
        QueueAnswer {
            ticket: raw,
            state: s.state,
            position: s.position,
            ahead: s.ahead,
            now_serving: s.now_serving,
            eta_secs: s.eta_secs,
            admission_token,
            retry_after_secs: s.retry_after,
        }
    }

    fn mint(&self, room: &Room, t: &Ticket, admitted_at: i64, pos: u64, ttl: i64) -> String {
        let opened = room.terms.opens_at().timestamp();
        let secs = |v: i64| u64::try_from(v).unwrap_or(0);
        self.inner.admissions.mint(&AdmissionClaims {
            aud: admission_token::audience(room.terms.sale_id),
            sub: t.user.clone(),
            nbf: secs(admitted_at),
            exp: secs(admitted_at.saturating_add(ttl)),
            pos,
            jat: secs(opened.saturating_add(t.place.joined_secs() as i64)),
        })
    }
}

/// The answer to a join that found the sale sold out (no place taken).
fn sold_out_answer(board: &Board) -> QueueAnswer {
    QueueAnswer {
        ticket: None,
        state: State::SoldOut,
        position: None,
        ahead: None,
        now_serving: board.now_serving,
        eta_secs: None,
        admission_token: None,
        retry_after_secs: 1,
    }
}

/// A place as the ticket will carry it.
fn place_of(raw: i64) -> Place {
    Place(u64::try_from(raw).unwrap_or(0))
}
