//! How the stock layer names an item: its sale, its id and its shard count, and which holder
//! keeps a buyer's or an order's units.

use uuid::Uuid;

use crate::stores::{
    mysql::sales::{ItemMeta, ItemRow, LiveItem},
    redis::keys::{Holder, ItemKeys, Keys},
};

/// An item as the stock layer addresses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    /// Sale id.
    pub sale_id: u64,
    /// Item id.
    pub item_id: u64,
    /// Stock shards (1: the item is one holder).
    pub shards: u16,
}

impl ItemRef {
    /// An item of one shard.
    pub fn whole(sale_id: u64, item_id: u64) -> Self {
        Self {
            sale_id,
            item_id,
            shards: 1,
        }
    }

    /// True when the stock is split over shards.
    pub fn sharded(&self) -> bool {
        self.shards > 1
    }

    /// The holders of the item's stock (see [`super::shards::holders`]).
    pub fn holders(&self) -> Vec<Holder> {
        super::shards::holders(self.shards)
    }

    /// The keys of one holder.
    pub fn keys(&self, keys: &Keys, holder: Holder) -> ItemKeys {
        keys.holder(self.sale_id, self.item_id, holder)
    }

    /// The keys of the holder that keeps order `id`.
    pub fn order_keys(&self, keys: &Keys, id: &Uuid) -> ItemKeys {
        self.keys(keys, order_holder(id, self.shards))
    }

    /// The keys of the holder that keeps `user`'s units.
    pub fn buyer_keys(&self, keys: &Keys, user: &str) -> ItemKeys {
        self.keys(keys, buyer_holder(user, self.shards))
    }
}

impl From<&ItemRow> for ItemRef {
    fn from(item: &ItemRow) -> Self {
        Self {
            sale_id: item.sale_id,
            item_id: item.id,
            shards: item.shards,
        }
    }
}

impl From<&ItemMeta> for ItemRef {
    fn from(item: &ItemMeta) -> Self {
        Self {
            sale_id: item.sale_id,
            item_id: item.item_id,
            shards: item.shards,
        }
    }
}

impl From<&LiveItem> for ItemRef {
    fn from(item: &LiveItem) -> Self {
        Self {
            sale_id: item.sale_id,
            item_id: item.item_id,
            shards: item.shards,
        }
    }
}

/// The holder that keeps `user`'s units of an item with `shards` shards: the item itself, or
/// the buyer's home shard.
pub fn buyer_holder(user: &str, shards: u16) -> Holder {
    if shards <= 1 {
        return Holder::Whole;
    }
    holder_of_hash(crate::domain::order_id::user_hash(user), shards)
}

/// [`buyer_holder`] from the buyer's hash (which every order id carries in bytes 12..16).
pub fn holder_of_hash(user_hash: u32, shards: u16) -> Holder {
    if shards <= 1 {
        return Holder::Whole;
    }
    // The hash's low bits also pick the ledger bucket inside a shard: mix before taking the
    // shard, so a shard's buyers still spread over all its buckets.
    let mixed = user_hash.wrapping_mul(0x9e37_79b1) >> 16;
    Holder::Shard {
        index: (mixed % u32::from(shards)) as u16,
        of: shards,
    }
}

/// The holder of order `id`'s units (from the buyer's hash it carries).
pub fn order_holder(id: &Uuid, shards: u16) -> Holder {
    let b = id.as_bytes();
    holder_of_hash(u32::from_be_bytes([b[12], b[13], b[14], b[15]]), shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyer_always_has_the_same_home_and_their_orders_too() {
        for user in ["alice", "bob", "u1", "u99999", "\u{1f600}"] {
            let home = buyer_holder(user, 3);
            assert!(matches!(home, Holder::Shard { of: 3, .. }));
            let id = crate::domain::order_id::fresh(9, user);
            assert_eq!(order_holder(&id, 3), home, "{user}");
            assert_eq!(buyer_holder(user, 1), Holder::Whole);
        }
    }

    #[test]
    fn buyers_spread_over_the_shards() {
        let mut counts = [0u32; 3];
        for n in 0..30_000 {
            if let Holder::Shard { index, .. } = buyer_holder(&format!("u{n}"), 3) {
                counts[usize::from(index)] += 1;
            }
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
