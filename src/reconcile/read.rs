//! Reading an item's Redis state for reconciliation without holding more than it needs: hashes
//! are read in paced HSCAN pages, the ledger is parsed page by page into compact entries (the
//! raw payloads are not kept; a repair reads the few it re-emits again), and buyer ids and
//! statuses are shared strings.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use redis::FromRedisValue;

use super::checks::LedgerEntry;
use crate::{
    domain::order_reserved::OrderReserved,
    stock::{
        compact::{self, CompactEntry},
        ledger::{ItemLedger, field_text},
    },
    stores::redis::RedisConn,
};

/// Hash fields read per HSCAN round trip: small enough that Redis never stalls on one call.
const HSCAN_COUNT: usize = 1_000;

/// After each HSCAN page the reader pauses this many times the page's round trip, so a
/// reconciliation of a large ledger takes at most a quarter of Redis's attention from the buy
/// path, however long the ledger.
const PAUSE_PER_PAGE_TIME: u32 = 3;

/// Ledger payloads read per HMGET when a repair re-emits entries.
const HMGET_CHUNK: usize = 500;

/// One shared copy of each distinct string (buyer ids repeat across the ledger, the buyers
/// hash and MySQL's rows; statuses are five words).
#[derive(Default)]
pub(super) struct Interner(HashSet<Arc<str>>);

impl Interner {
    /// The shared copy of `s`.
    pub(super) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.0.insert(shared.clone());
        shared
    }
}

/// Hands every field of a hash to `each`, page by page (HSCAN may repeat a field), paced (see
/// [`PAUSE_PER_PAGE_TIME`]).
async fn hscan_each<V: FromRedisValue>(
    conn: &mut RedisConn,
    key: &str,
    mut each: impl FnMut(String, V),
) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let started = std::time::Instant::now();
        let (next, page): (u64, Vec<(String, V)>) = redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(HSCAN_COUNT)
            .query_async(conn)
            .await?;
        for (field, value) in page {
            each(field, value);
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
        tokio::time::sleep(started.elapsed() * PAUSE_PER_PAGE_TIME).await;
    }
}

/// Every field of a hash (a repeated field is kept once).
pub(super) async fn hscan_all<V: FromRedisValue>(
    conn: &mut RedisConn,
    key: &str,
) -> redis::RedisResult<HashMap<String, V>> {
    let mut out = HashMap::new();
    hscan_each(conn, key, |field, value| {
        out.insert(field, value);
    })
    .await?;
    Ok(out)
}

/// The ledger's entries, sorted by order id and one per id, and the fields whose payload did
/// not parse (or names another order).
pub(super) async fn ledger(
    conn: &mut RedisConn,
    key: &str,
    users: &mut Interner,
) -> redis::RedisResult<(Vec<LedgerEntry>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut unreadable = Vec::new();
    hscan_each(
        conn,
        key,
        |field: String, payload: Vec<u8>| match OrderReserved::parse(&payload) {
            Ok(e) if e.order_id.to_string() == field => entries.push(LedgerEntry {
                order_id: e.order_id,
                user_id: users.get(&e.user_id),
                quantity: e.quantity,
                reserved_at_ms: e.reserved_at_ms,
            }),
            _ => unreadable.push(field),
        },
    )
    .await?;
    entries.sort_unstable_by_key(|e| e.order_id);
    entries.dedup_by_key(|e| e.order_id);
    entries.shrink_to_fit();
    unreadable.sort_unstable();
    unreadable.dedup();
    Ok((entries, unreadable))
}

/// Buckets read per round trip from a compact ledger (about a thousand entries).
const BUCKETS_PER_READ: usize = 20;

/// What a compact (v5) item holds: the buyers' units, the ledger's entries (sorted, one per
/// id), the fields that did not parse, and the released orders (marked in their entries), read
/// in paced groups of buckets.
pub(super) struct CompactRead {
    pub buyers: HashMap<String, i64>,
    pub ledger: Vec<LedgerEntry>,
    pub unreadable: Vec<String>,
    pub released: HashMap<uuid::Uuid, u32>,
}

/// Reads every bucket of `keys`, a group per round trip, paced like HSCAN pages.
async fn each_bucket(
    conn: &mut RedisConn,
    keys: &[String],
    mut each: impl FnMut(Vec<(Vec<u8>, Vec<u8>)>),
) -> redis::RedisResult<()> {
    for group in keys.chunks(BUCKETS_PER_READ) {
        let started = std::time::Instant::now();
        let mut pipe = redis::pipe();
        for key in group {
            pipe.hgetall(key);
        }
        let pages: Vec<Vec<(Vec<u8>, Vec<u8>)>> = pipe.query_async(conn).await?;
        pages.into_iter().for_each(&mut each);
        tokio::time::sleep(started.elapsed() * PAUSE_PER_PAGE_TIME).await;
    }
    Ok(())
}

/// Reads a compact ledger and its buyers (see [`CompactRead`]).
pub(super) async fn compact(
    conn: &mut RedisConn,
    ledger: &ItemLedger,
    users: &mut Interner,
) -> redis::RedisResult<CompactRead> {
    let mut read = CompactRead {
        buyers: HashMap::new(),
        ledger: Vec::new(),
        unreadable: Vec::new(),
        released: HashMap::new(),
    };
    // A bucket holds a buyer's units with the buyer's orders, read in one HGETALL, so both are
    // of the same instant.
    each_bucket(conn, &ledger.ledger_keys(), |page| {
        for (field, raw) in page {
            if let Some(user) = compact::user_of_field(&field) {
                let units = std::str::from_utf8(&raw).ok().and_then(|u| u.parse().ok());
                read.buyers.insert(user, units.unwrap_or(i64::MIN));
                continue;
            }
            let (Some(id), Some(e)) = (ledger.order_of_field(&field), CompactEntry::decode(&raw))
            else {
                read.unreadable.push(field_text(&field));
                continue;
            };
            if e.released {
                read.released.insert(id, e.quantity);
            }
            read.ledger.push(LedgerEntry {
                order_id: id,
                user_id: users.get(&e.user_id),
                quantity: e.quantity,
                reserved_at_ms: e.reserved_at_ms,
            });
        }
    })
    .await?;
    read.ledger.sort_unstable_by_key(|e| e.order_id);
    read.ledger.shrink_to_fit();
    read.unreadable.sort_unstable();
    Ok(read)
}

/// The ledger payloads of `ids` that are still there (stored, or rebuilt from compact
/// entries), in chunks.
pub(super) async fn payloads(
    conn: &mut RedisConn,
    ledger: &ItemLedger,
    ids: &[uuid::Uuid],
) -> redis::RedisResult<Vec<(uuid::Uuid, Vec<u8>)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(HMGET_CHUNK) {
        let found = ledger.payloads(conn, chunk).await?;
        out.extend(
            chunk
                .iter()
                .zip(found)
                .filter_map(|(id, payload)| Some((*id, payload?))),
        );
    }
    Ok(out)
}
