//! The one place Redis key names are built.
//!
//! Every key of one sale item carries the hash tag `{s<sale>:i<item>}`, so a multi-key script
//! over them stays in one Redis Cluster slot. The configured prefix comes first, outside the tag,
//! so several deployments (or parallel tests) can share one server.

use std::sync::Arc;

/// Builds key names under one prefix.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    prefix: Arc<str>,
}

/// The keys of one sale item, in the order the stock scripts expect them as `KEYS[1..7]`
/// (scripts before v4 use the first six).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemKeys {
    /// Remaining units.
    pub stock: String,
    /// Window, limit, price, expiry, script version.
    pub meta: String,
    /// User -> units reserved.
    pub buyers: String,
    /// Order id -> reservation payload; the outbox record.
    pub ledger: String,
    /// Order ids not yet acknowledged by Kafka, scored by reserve time.
    pub outbox: String,
    /// User + idempotency key -> order id.
    pub idem: String,
    /// Order id -> units given back by a cancelled or expired order (v4 on).
    pub released: String,
}

impl ItemKeys {
    /// The keys as script `KEYS`, in contract order.
    pub fn as_script_keys(&self) -> [&str; 7] {
        [
            &self.stock,
            &self.meta,
            &self.buyers,
            &self.ledger,
            &self.outbox,
            &self.idem,
            &self.released,
        ]
    }
}

/// The keys of one sale's waiting room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomKeys {
    /// Join counters and the pre-queue draw (`pre`, `seq`, `drawn`, `pre_total`, `seed`).
    pub counters: String,
    /// Buyers who bought with their admission, scored by position.
    pub finished: String,
    /// The usher's published state (now serving, marks, sold out), read by every instance.
    pub board: String,
    bucket_prefix: String,
}

impl RoomKeys {
    /// The bucket (hash of user digest -> place) holding the user with this digest.
    pub fn bucket(&self, bucket: u16) -> String {
        format!("{}{bucket}", self.bucket_prefix)
    }
}

impl Keys {
    /// Keys under `prefix` (may be empty).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The keys of one sale item.
    pub fn item(&self, sale_id: u64, item_id: u64) -> ItemKeys {
        let base = format!("{}sk:{{s{sale_id}:i{item_id}}}", self.prefix);
        ItemKeys {
            stock: format!("{base}:stock"),
            meta: format!("{base}:meta"),
            buyers: format!("{base}:buyers"),
            ledger: format!("{base}:ledger"),
            outbox: format!("{base}:outbox"),
            idem: format!("{base}:idem"),
            released: format!("{base}:released"),
        }
    }

    /// A short-lived key in an item's slot, written so that a `WAIT` after it confirms that
    /// replicas hold everything written to the item before (the relay checks this before it
    /// sends what waited in the outbox).
    pub(crate) fn item_fence(&self, sale_id: u64, item_id: u64) -> String {
        format!("{}sk:{{s{sale_id}:i{item_id}}}:fence", self.prefix)
    }

    /// A payment notification's signature, recorded once it was seen (replay detection).
    pub(crate) fn payment_signature(&self, mac: &[u8; 32]) -> String {
        format!("{}sk:pay:{}", self.prefix, hex::encode(mac))
    }

    /// A distributed lock by name (`prewarm:s12`, `leader:reconcile`).
    pub fn lock(&self, name: &str) -> String {
        format!("{}sk:lock:{{{name}}}", self.prefix)
    }

    /// The serialised public detail of a sale (read path cache).
    pub fn sale_detail(&self, sale_id: u64) -> String {
        format!("{}sk:sale:{{s{sale_id}}}:detail", self.prefix)
    }

    /// The Bloom filter of existing sale ids (tagged, so its rebuild key shares its slot).
    pub fn sale_bloom(&self) -> String {
        format!("{}sk:{{sales}}:bloom", self.prefix)
    }

    /// A temporary key a Bloom filter is rebuilt under before it replaces the live one.
    pub(crate) fn sale_bloom_rebuild(&self, unique: &str) -> String {
        format!("{}sk:{{sales}}:bloom:rebuild:{unique}", self.prefix)
    }

    /// A sale id known not to exist (short-lived negative entry).
    pub(crate) fn sale_missing(&self, sale_id: u64) -> String {
        format!("{}sk:sale:{{s{sale_id}}}:missing", self.prefix)
    }

    /// The pub/sub channel on which sale changes are announced to every instance.
    pub(crate) fn sale_invalidations(&self) -> String {
        format!("{}sk:sales:invalidate", self.prefix)
    }

    /// The keys of one sale's waiting room, all under the hash tag `{q<sale>}` (one slot).
    pub fn room(&self, sale_id: u64) -> RoomKeys {
        let base = format!("{}sk:{{q{sale_id}}}", self.prefix);
        RoomKeys {
            counters: format!("{base}:n"),
            finished: format!("{base}:done"),
            board: format!("{base}:board"),
            bucket_prefix: format!("{base}:u:"),
        }
    }

    /// The prefix itself (tests use it to find their keys).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis Cluster hashes only the part between the first `{` and the next `}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("tag open");
        let close = key[open..].find('}').expect("tag close") + open;
        &key[open + 1..close]
    }

    #[test]
    fn all_keys_of_an_item_share_one_hash_tag() {
        let keys = Keys::new("t1:").item(12, 34);
        for key in keys.as_script_keys() {
            assert_eq!(hash_tag(key), "s12:i34", "{key}");
            assert!(key.starts_with("t1:sk:"), "{key}");
        }
    }

    #[test]
    fn different_items_get_different_tags() {
        let k = Keys::new("");
        assert_ne!(hash_tag(&k.item(1, 2).stock), hash_tag(&k.item(1, 3).stock));
        assert_ne!(hash_tag(&k.item(1, 2).stock), hash_tag(&k.item(2, 2).stock));
        assert_eq!(k.item(1, 2).stock, "sk:{s1:i2}:stock");
    }
}
