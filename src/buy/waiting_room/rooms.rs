//! The rooms an instance has seen: each sale's terms (from MySQL, at most every few seconds)
//! and its board (from Redis, at most once a second, in the background once one is known), so
//! that a poll costs neither store anything.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use sqlx::MySqlPool;

use super::{board::Board, error::QueueError};
use crate::{
    domain::sale::Admission,
    stock::ItemRef,
    stores::{
        mysql::sales::{self, SaleRecord},
        redis::{RedisPool, keys::RoomKeys},
    },
};

/// How long a sale's terms are trusted before MySQL is read again, in milliseconds.
const TERMS_TTL_MS: i64 = 5_000;
/// How often a room's board is read from Redis, at most, while polls keep coming.
pub(crate) const BOARD_EVERY_MS: i64 = 1_000;
/// Age past which a board is read again before a poll is answered (the instance was quiet).
const STALE_MS: i64 = 3 * BOARD_EVERY_MS;
/// How long before a board read a sell-out heard by a buy still counts (the usher ticks five
/// times a second; a board read just after the sell-out may not show it yet).
const HEARD_MARGIN_MS: i64 = 500;

/// What a room needs to know of its sale.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    /// Sale id.
    pub sale_id: u64,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end.
    pub ends_at: DateTime<Utc>,
    /// The admission policy.
    pub admission: Admission,
    /// The sale's items.
    pub items: Vec<ItemRef>,
    /// The sale's uid as its keys carry it, the room's included (script v6 on).
    pub key_uid: Option<u128>,
}

impl Terms {
    pub(crate) fn of(record: &SaleRecord) -> Self {
        Self {
            sale_id: record.sale.id,
            starts_at: record.sale.starts_at,
            ends_at: record.sale.ends_at,
            admission: record.sale.admission.clone(),
            items: record
                .items
                .iter()
                .map(|item| ItemRef::of(&record.sale, item))
                .collect(),
            key_uid: crate::stock::key_uid(&record.sale.script_version, &record.sale.uid),
        }
    }

    /// When joins open.
    pub(crate) fn opens_at(&self) -> DateTime<Utc> {
        self.admission.opens_at(self.starts_at)
    }
}

/// One sale's room as this instance knows it.
pub(crate) struct Room {
    pub terms: Terms,
    pub keys: RoomKeys,
    /// When the terms were read from MySQL, Unix milliseconds.
    loaded_ms: i64,
    board: RwLock<Arc<Board>>,
    board_read_ms: AtomicI64,
    refreshing: AtomicBool,
    /// When a buy on this instance found every item sold out, Unix milliseconds (0: never).
    sold_out_heard_ms: AtomicI64,
    /// The pre-queue's size, as this instance's joins learned it from the draw (-1 before):
    /// a board read before the draw still places arrival tickets with it.
    drawn_total: AtomicI64,
}

/// Reads a room's board; an absent one is the empty board.
pub(crate) async fn read_board(redis: &RedisPool, keys: &RoomKeys) -> redis::RedisResult<Board> {
    let raw: Option<String> = redis::cmd("GET")
        .arg(&keys.board)
        .query_async(&mut redis.get())
        .await?;
    Ok(raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

impl Room {
    /// The board, read again when a second old: while polls keep coming, they answer the
    /// board in hand and one of them refreshes it in the background; a board older than
    /// [`STALE_MS`] (the first poll, or one after a quiet spell) is read before answering.
    pub(crate) async fn board(self: &Arc<Self>, redis: &RedisPool, now: i64) -> Arc<Board> {
        let read = self.board_read_ms.load(Ordering::Acquire);
        if now - read >= STALE_MS {
            // Boxed: a poll's future carries this read only when it runs (rarely), so the
            // common answer from memory does not move a Redis call's state around.
            if let Ok(b) = Box::pin(read_board(redis, &self.keys)).await {
                self.store(b, now);
            }
        } else if now - read >= BOARD_EVERY_MS && !self.refreshing.swap(true, Ordering::AcqRel) {
            self.refresh_in_background(redis);
        }
        self.board.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True when a buy on this instance found the sale sold out after the board was read (or
    /// within half a second before: the usher may not have seen it yet).
    pub(crate) fn heard_sold_out(&self) -> bool {
        let heard = self.sold_out_heard_ms.load(Ordering::Acquire);
        heard > 0 && heard + HEARD_MARGIN_MS > self.board_read_ms.load(Ordering::Acquire)
    }

    /// Records that a buy found every item of the sale sold out.
    pub(crate) fn hear_sold_out(&self) {
        let now = Utc::now().timestamp_millis();
        self.sold_out_heard_ms.store(now, Ordering::Release);
    }

    /// Records the draw's size a join script reported (`-1`: not drawn yet).
    pub(crate) fn saw_draw(&self, pre_total: i64) {
        if pre_total >= 0 {
            self.drawn_total.store(pre_total, Ordering::Release);
        }
    }

    /// The board with the draw this instance's joins saw, when `board` predates it (an arrival
    /// place's position is the draw's size plus its index); `None` when it needs no patch.
    fn patched(&self, board: &Board) -> Option<Board> {
        let total = self.drawn_total.load(Ordering::Acquire);
        if board.drawn || total < 0 {
            return None;
        }
        let mut b = board.clone();
        b.drawn = true;
        b.pre_total = total as u64;
        Some(b)
    }

    /// `board`, patched with the draw this instance's joins saw ([`Room::patched`]).
    pub(crate) fn with_draw(&self, board: Arc<Board>) -> Arc<Board> {
        self.patched(&board).map_or(board, Arc::new)
    }

    /// `f` of the board in hand, without waiting and without taking a reference to it:
    /// `None` when the board is too old to answer from (the caller reads it first). A board a
    /// second old is refreshed in the background meanwhile.
    pub(crate) fn with_board<R>(
        self: &Arc<Self>,
        redis: &RedisPool,
        now: i64,
        f: impl FnOnce(&Board) -> R,
    ) -> Option<R> {
        let read = self.board_read_ms.load(Ordering::Acquire);
        if now - read >= STALE_MS {
            return None;
        }
        if now - read >= BOARD_EVERY_MS && !self.refreshing.swap(true, Ordering::AcqRel) {
            self.refresh_in_background(redis);
        }
        let board = self.board.read().unwrap_or_else(|e| e.into_inner());
        Some(match self.patched(&board) {
            Some(b) => f(&b),
            None => f(&board),
        })
    }

    fn refresh_in_background(self: &Arc<Self>, redis: &RedisPool) {
        let room = self.clone();
        let redis = redis.clone();
        tokio::spawn(async move {
            match read_board(&redis, &room.keys).await {
                Ok(b) => room.store(b, Utc::now().timestamp_millis()),
                Err(e) => tracing::warn!(
                    sale_id = room.terms.sale_id,
                    error.message = %e,
                    "reading the queue board failed"
                ),
            }
            room.refreshing.store(false, Ordering::Release);
        });
    }

    fn store(&self, board: Board, at: i64) {
        *self.board.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(board);
        self.board_read_ms.store(at, Ordering::Release);
    }
}

/// The rooms of one instance.
#[derive(Default)]
pub(crate) struct Rooms {
    map: RwLock<HashMap<u64, Arc<Room>>>,
    loading: tokio::sync::Mutex<()>,
}

impl Rooms {
    /// The room of a queued sale, its terms at most [`TERMS_TTL_MS`] old.
    ///
    /// # Errors
    /// No such sale, an open sale, or MySQL failed.
    pub(crate) async fn get(
        &self,
        db: &MySqlPool,
        keys: impl Fn(&Terms) -> RoomKeys,
        sale_id: u64,
        now: i64,
    ) -> Result<Arc<Room>, QueueError> {
        if let Some(room) = self.fresh(sale_id, now) {
            return Ok(room);
        }
        // Boxed for the same reason as the board's read: loading is the rare case.
        Box::pin(self.load(db, keys, sale_id, now)).await
    }

    /// Loads the sale's terms from MySQL (one load at a time).
    async fn load(
        &self,
        db: &MySqlPool,
        keys: impl Fn(&Terms) -> RoomKeys,
        sale_id: u64,
        now: i64,
    ) -> Result<Arc<Room>, QueueError> {
        let _one = self.loading.lock().await;
        if let Some(room) = self.fresh(sale_id, now) {
            return Ok(room);
        }
        let record = sales::get_sale(db, sale_id)
            .await?
            .ok_or(QueueError::NotFound)?;
        if !record.sale.admission.queued() {
            return Err(QueueError::NotQueued);
        }
        let old = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sale_id)
            .cloned();
        let (board, read, total) = old.map_or((Arc::default(), 0, -1), |o| {
            (
                o.board.read().unwrap_or_else(|e| e.into_inner()).clone(),
                o.board_read_ms.load(Ordering::Acquire),
                o.drawn_total.load(Ordering::Acquire),
            )
        });
        let terms = Terms::of(&record);
        let room = Arc::new(Room {
            keys: keys(&terms),
            terms,
            loaded_ms: Utc::now().timestamp_millis(),
            board: RwLock::new(board),
            board_read_ms: AtomicI64::new(read),
            refreshing: AtomicBool::new(false),
            drawn_total: AtomicI64::new(total),
            sold_out_heard_ms: AtomicI64::new(0),
        });
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sale_id, room.clone());
        Ok(room)
    }

    /// `f` of the room of `sale_id`, if this instance holds it with fresh terms (nothing is
    /// loaded, no reference taken).
    pub(crate) fn with_fresh<R>(
        &self,
        sale_id: u64,
        now: i64,
        f: impl FnOnce(&Arc<Room>) -> R,
    ) -> Option<R> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(&sale_id)
            .filter(|r| now - r.loaded_ms < TERMS_TTL_MS)
            .map(f)
    }

    /// The room of `sale_id` if this instance holds it (nothing is loaded).
    pub(crate) fn held(&self, sale_id: u64) -> Option<Arc<Room>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sale_id)
            .cloned()
    }

    fn fresh(&self, sale_id: u64, now: i64) -> Option<Arc<Room>> {
        self.with_fresh(sale_id, now, Arc::clone)
    }

    /// Forgets rooms of sales that ended (called by the usher's loop now and then).
    pub(crate) fn prune(&self, now: DateTime<Utc>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, r| r.terms.ends_at > now);
    }
}
