//! How the stock layer names an item: its sale, its id, its shard count and (script v6 on) its
//! sale's uid, and which holder keeps a buyer's or an order's units.

use uuid::Uuid;

use crate::stores::{
    mysql::sales::{ItemMeta, ItemRow, LiveItem, SaleRow},
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
    /// The sale's uid, in its keys' hash tag (sales of script v6 on; `None` before).
    pub uid: Option<u128>,
}

impl ItemRef {
    /// An item of one shard, in the key layout before v6.
    pub fn whole(sale_id: u64, item_id: u64) -> Self {
        Self {
            sale_id,
            item_id,
            shards: 1,
            uid: None,
        }
    }

    /// An item of `sale`.
    pub fn of(sale: &SaleRow, item: &ItemRow) -> Self {
        Self {
            sale_id: item.sale_id,
            item_id: item.id,
            shards: item.shards,
            uid: key_uid(&sale.script_version, &sale.uid),
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
        keys.holder(self.sale_id, self.item_id, self.uid, holder)
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

impl From<&ItemMeta> for ItemRef {
    fn from(item: &ItemMeta) -> Self {
        Self {
            sale_id: item.sale_id,
            item_id: item.item_id,
            shards: item.shards,
            uid: key_uid(&item.script_version, &item.sale_uid),
        }
    }
}

impl From<&LiveItem> for ItemRef {
    fn from(item: &LiveItem) -> Self {
        Self {
            sale_id: item.sale_id,
            item_id: item.item_id,
            shards: item.shards,
            uid: key_uid(&item.script_version, &item.sale_uid),
        }
    }
}

/// The uid in the keys of a sale pinned to `script_version` with uid `uid` (32 hex characters):
/// `None` before v6. A uid that is not hex (none is: sales get `UUID()` or a v4 UUID's hex)
/// would still name its sale alone, through a hash of its text.
pub fn key_uid(script_version: &str, uid: &str) -> Option<u128> {
    if !crate::domain::script_version::keys_carry_uid(script_version) {
        return None;
    }
    Some(u128::from_str_radix(uid, 16).unwrap_or_else(|_| {
        // FNV-1a, 128 bits.
        uid.bytes()
            .fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d, |h, b| {
                (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
            })
    }))
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

    #[test]
    fn only_sales_of_v6_on_carry_their_uid_in_their_keys() {
        let uid = "0123456789abcdef0123456789abcdef";
        assert_eq!(key_uid("v5", uid), None);
        assert_eq!(
            key_uid("v6", uid),
            Some(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
        );
        let (a, b) = (key_uid("v6", "not-hex-a"), key_uid("v6", "not-hex-b"));
        assert!(a.is_some() && a != b, "{a:?} {b:?}");
    }
}
