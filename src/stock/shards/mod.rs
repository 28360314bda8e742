//! A hot item's stock shards on Redis Cluster.
//!
//! An item with `shards: N > 1` keeps its stock in N + 1 holders, each under its own hash tag
//! (so on a Cluster they live on different masters): N shards, each with the v5 layout of a
//! whole item (stock, meta, ledger buckets, outbox), and a central bucket that refills them.
//! A buyer always buys on their home shard ([`super::request::buyer_holder`]), which keeps
//! their units, so the per-user limit stays exact.
//!
//! Units move between holders in two atomic steps: `move_take.v1` on the giver (take, record
//! the move as pending) and `move_give.v1` on the receiver (add, record the move's id, once).
//! The pending record is deleted after the give. A move whose caller died in between is given
//! again by [`StockService::settle_moves`], which the relay runs for every live sharded item.
//! Every holder keeps `initial + moved_in - moved_out == stock + reserved - released`.

mod moves;
mod refill;
mod warm;

pub(crate) use refill::Refills;

use crate::stores::redis::keys::Holder;

/// The holders of an item with `shards` shards: the item itself, or the central bucket then
/// each shard.
pub fn holders(shards: u16) -> Vec<Holder> {
    if shards <= 1 {
        return vec![Holder::Whole];
    }
    std::iter::once(Holder::Central)
        .chain((0..shards).map(|index| Holder::Shard { index, of: shards }))
        .collect()
}

/// The name a move records for a holder (`c`, `h0`, `h1`, ...).
pub(super) fn name(holder: Holder) -> String {
    match holder {
        Holder::Whole => "item".into(),
        Holder::Central => "c".into(),
        Holder::Shard { index, .. } => format!("h{index}"),
    }
}

/// The holder a move record names, for an item with `shards` shards.
pub(super) fn parse_name(name: &str, shards: u16) -> Option<Holder> {
    match name {
        "c" => Some(Holder::Central),
        "item" => Some(Holder::Whole),
        _ => {
            let index: u16 = name.strip_prefix('h')?.parse().ok()?;
            (index < shards).then_some(Holder::Shard { index, of: shards })
        }
    }
}

/// How an item's stock is split when it is warmed: each shard starts with half its share (the
/// stock over the shards, rounded up), the central bucket with the rest.
pub fn initial_split(stock: u64, shards: u16) -> (u64, u64) {
    let share = share(stock, shards);
    let each = share.div_ceil(2).min(stock / u64::from(shards.max(1)));
    (each, stock - each * u64::from(shards))
}

/// A shard's share of the stock: the stock over the shards, rounded up.
pub fn share(stock: u64, shards: u16) -> u64 {
    stock.div_ceil(u64::from(shards.max(1)))
}

/// The units one refill moves: half what a shard started with (about a quarter of its
/// share), at least what the buy asks.
pub(super) fn allotment(started_with: u64, quantity: u32) -> u64 {
    (started_with / 2).max(1).max(u64::from(quantity))
}

/// One sharded item, as the moves need it.
#[derive(Debug, Clone)]
pub struct ShardedItem<'a> {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// The sale's uid (every holder's meta carries it).
    pub sale_uid: &'a str,
    /// The uid in the item's keys (v6 on).
    pub key_uid: Option<u128>,
    /// Shard count (> 1).
    pub shards: u16,
}

/// What a move did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The units arrived.
    Moved(u64),
    /// The giver holds fewer than asked; nothing moved.
    Short(i64),
    /// The units left the giver but did not arrive yet (the receiver is being rebuilt, or
    /// Redis failed): the move stays pending and is given later.
    InFlight,
    /// The giver refused (not warmed, another sale's, being rebuilt).
    Refused(i64),
}

/// What a refill found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refill {
    /// Units arrived at the shard: try again.
    Arrived,
    /// Units are on their way, or another holder's stock could not be taken now: answer
    /// "busy, retry" rather than sold out.
    Moving,
    /// No other holder has a unit, and none is in flight.
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_of_one_shard_is_one_holder() {
        assert_eq!(holders(1), vec![Holder::Whole]);
        let h = holders(3);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0], Holder::Central);
        assert_eq!(h[3], Holder::Shard { index: 2, of: 3 });
    }

    #[test]
    fn names_round_trip() {
        for h in holders(5) {
            assert_eq!(parse_name(&name(h), 5), Some(h));
        }
        assert_eq!(parse_name("h5", 5), None, "no shard 5 of 5");
        assert_eq!(parse_name("x", 5), None);
    }

    #[test]
    fn the_split_keeps_every_unit() {
        for (stock, shards) in [(300, 3), (1, 3), (2, 3), (10, 16), (1_000_001, 7)] {
            let (each, central) = initial_split(stock, shards);
            assert_eq!(
                each * u64::from(shards) + central,
                stock,
                "{stock} over {shards}"
            );
            assert!(each * 2 >= share(stock, shards) || each == stock / u64::from(shards));
        }
        assert_eq!(initial_split(300, 3), (50, 150));
        assert_eq!(allotment(50, 1), 25);
        assert_eq!(allotment(2, 3), 3);
    }
}
