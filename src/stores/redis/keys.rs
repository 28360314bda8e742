//! The one place Redis key names are built.
//!
//! Every key of one sale item carries one hash tag, so a multi-key script over them stays in one
//! Redis Cluster slot: `{s<sale>.<uid>:i<item>}` for sales of script v6 on, whose tag carries the
//! sale's uid (two databases sharing one Redis never meet, even with equal sale ids), and
//! `{s<sale>:i<item>}` for sales warmed before. The configured prefix comes first, outside the
//! tag, so several deployments (or parallel tests) can share one server.

use std::sync::Arc;

use super::slots::shard_tag;

/// Builds key names under one prefix.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    prefix: Arc<str>,
    /// The database's identity (table `deployment`), carried by the keys that belong to the
    /// database rather than to one sale: the periodic jobs' leader locks and the sale page
    /// cache. Empty: not scoped.
    scope: Arc<str>,
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
    /// Units moved out to another holder of a sharded item: move id -> "holder units", kept
    /// (the record reconciliation and a retried move read).
    pub moves_out: String,
    /// The moves out not yet known to have arrived: move id -> "holder units".
    pub moves_pending: String,
    /// Short-lived; written so that a `WAIT` after it confirms that replicas hold everything
    /// written to the holder before (the relay checks this before it sends what waited in the
    /// outbox).
    pub fence: String,
    /// Units moved in from another holder: move id -> "holder units" (a retried give finds
    /// its move here and adds nothing).
    pub moves_in: String,
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

/// Where a part of an item's stock lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// An item of one shard: all its stock under one hash tag.
    Whole,
    /// A sharded item's central bucket, which refills the shards.
    Central,
    /// Shard `index` of a sharded item's `of` shards.
    Shard {
        /// 0-based.
        index: u16,
        /// The item's shard count.
        of: u16,
    },
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Whole => f.write_str("item"),
            Holder::Central => f.write_str("central"),
            Holder::Shard { index, .. } => write!(f, "shard {index}"),
        }
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
            scope: "".into(),
        }
    }

    /// These keys for the database whose identity is `database_uid`: two databases sharing
    /// one Redis and prefix then elect their own leaders and cache their own sale pages.
    pub fn scoped(mut self, database_uid: &str) -> Self {
        self.scope = database_uid.into();
        self
    }

    /// `name`, followed by `.<database uid>` when these keys are scoped.
    fn in_scope(&self, name: &str) -> String {
        if self.scope.is_empty() {
            name.to_string()
        } else {
            format!("{name}.{}", self.scope)
        }
    }

    /// The name of the lock whose holder leads the periodic job `job` (see [`Keys::lock`]).
    pub fn leader(&self, job: &str) -> String {
        self.in_scope(&format!("leader:{job}"))
    }

    /// The keys of one sale item in the layout before v6 (no uid in the tag).
    pub fn item(&self, sale_id: u64, item_id: u64) -> ItemKeys {
        self.holder(sale_id, item_id, None, Holder::Whole)
    }

    /// The keys of one holder of an item's stock: the whole item (one hash tag), or of a
    /// sharded item its central bucket or one shard, each under its own tag. `uid` is the
    /// sale's uid for sales whose keys carry it (script v6 on), `None` before.
    pub fn holder(
        &self,
        sale_id: u64,
        item_id: u64,
        uid: Option<u128>,
        holder: Holder,
    ) -> ItemKeys {
        let item_tag = match uid {
            Some(uid) => format!("s{sale_id}.{uid:032x}:i{item_id}"),
            None => format!("s{sale_id}:i{item_id}"),
        };
        let tag = match holder {
            Holder::Whole => item_tag,
            Holder::Central => format!("{item_tag}:c"),
            Holder::Shard { index, of } => shard_tag(&item_tag, index, of),
        };
        let base = format!("{}sk:{{{tag}}}", self.prefix);
        ItemKeys {
            moves_out: format!("{base}:moves:out"),
            moves_pending: format!("{base}:moves:pending"),
            moves_in: format!("{base}:moves:in"),
            fence: format!("{base}:fence"),
            stock: format!("{base}:stock"),
            meta: format!("{base}:meta"),
            buyers: format!("{base}:buyers"),
            ledger: format!("{base}:ledger"),
            outbox: format!("{base}:outbox"),
            idem: format!("{base}:idem"),
            released: format!("{base}:released"),
        }
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
        let tag = self.in_scope(&format!("s{sale_id}"));
        format!("{}sk:sale:{{{tag}}}:detail", self.prefix)
    }

    /// The Bloom filter of existing sale ids (tagged, so its rebuild key shares its slot).
    pub fn sale_bloom(&self) -> String {
        format!("{}sk:{{{}}}:bloom", self.prefix, self.in_scope("sales"))
    }

    /// The name of the lock one instance holds while it fills sale `sale_id`'s page cache.
    pub(crate) fn page_fill_lock(&self, sale_id: u64) -> String {
        self.in_scope(&format!("sale_fill:s{sale_id}"))
    }

    /// A temporary key a Bloom filter is rebuilt under before it replaces the live one.
    pub(crate) fn sale_bloom_rebuild(&self, unique: &str) -> String {
        format!(
            "{}sk:{{{}}}:bloom:rebuild:{unique}",
            self.prefix,
            self.in_scope("sales")
        )
    }

    /// A sale id known not to exist (short-lived negative entry).
    pub(crate) fn sale_missing(&self, sale_id: u64) -> String {
        let tag = self.in_scope(&format!("s{sale_id}"));
        format!("{}sk:sale:{{{tag}}}:missing", self.prefix)
    }

    /// The pub/sub channel on which sale changes are announced to every instance.
    pub(crate) fn sale_invalidations(&self) -> String {
        format!("{}sk:sales:invalidate", self.prefix)
    }

    /// The keys of one sale's waiting room, all under one hash tag (one slot): `{q<sale>.<uid>}`
    /// for sales whose keys carry their uid (script v6 on), `{q<sale>}` before.
    pub fn room(&self, sale_id: u64, uid: Option<u128>) -> RoomKeys {
        let base = match uid {
            Some(uid) => format!("{}sk:{{q{sale_id}.{uid:032x}}}", self.prefix),
            None => format!("{}sk:{{q{sale_id}}}", self.prefix),
        };
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
    use crate::stores::redis::slots::slot_of_tag;

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
    fn each_shard_gets_its_own_range_of_slots_and_tag() {
        let k = Keys::new("p:");
        for of in [2u16, 3, 5, 16] {
            for index in 0..of {
                let keys = k.holder(7, 9, None, Holder::Shard { index, of });
                let tag = hash_tag(&keys.stock).to_string();
                assert!(tag.starts_with(&format!("s7:i9:h{index}.")), "{tag}");
                let slot = u32::from(slot_of_tag(&tag));
                let (of32, i32_) = (u32::from(of), u32::from(index));
                assert!(slot > 16_384 * i32_ / of32 || i32_ == 0, "{tag} {slot}");
                assert!(slot + 1 < 16_384 * (i32_ + 1) / of32 || i32_ + 1 == of32);
                for key in keys.as_script_keys() {
                    assert_eq!(hash_tag(key), tag);
                }
                assert_eq!(hash_tag(&keys.moves_in), tag);
            }
        }
        let central = k.holder(7, 9, None, Holder::Central);
        assert_eq!(hash_tag(&central.stock), "s7:i9:c");
        assert_eq!(k.holder(7, 9, None, Holder::Whole), k.item(7, 9));
    }

    #[test]
    fn a_sale_uid_in_the_tag_keeps_two_sales_with_one_id_apart() {
        let k = Keys::new("p:");
        let (a, b) = (0x0123_4567_89ab_cdef_u128, 0xfedc_ba98_7654_3210_u128 << 64);
        let whole = k.holder(1, 1, Some(a), Holder::Whole);
        assert_eq!(
            hash_tag(&whole.stock),
            "s1.00000000000000000123456789abcdef:i1"
        );
        for key in whole.as_script_keys() {
            assert_eq!(hash_tag(key), hash_tag(&whole.stock), "{key}");
        }
        for holder in [
            Holder::Whole,
            Holder::Central,
            Holder::Shard { index: 1, of: 3 },
        ] {
            let (ka, kb) = (
                k.holder(1, 1, Some(a), holder),
                k.holder(1, 1, Some(b), holder),
            );
            assert_ne!(ka.stock, kb.stock, "{holder}");
            assert_ne!(ka.stock, k.holder(1, 1, None, holder).stock, "{holder}");
        }
        // A shard's tag still falls in its range of slots with the uid in it.
        let shard = k.holder(1, 1, Some(a), Holder::Shard { index: 2, of: 3 });
        let tag = hash_tag(&shard.stock);
        assert!(
            tag.starts_with("s1.00000000000000000123456789abcdef:i1:h2."),
            "{tag}"
        );
        assert!(u32::from(slot_of_tag(tag)) > 16_384 * 2 / 3, "{tag}");
    }

    #[test]
    fn different_items_get_different_tags() {
        let k = Keys::new("");
        assert_ne!(hash_tag(&k.item(1, 2).stock), hash_tag(&k.item(1, 3).stock));
        assert_ne!(hash_tag(&k.item(1, 2).stock), hash_tag(&k.item(2, 2).stock));
        assert_eq!(k.item(1, 2).stock, "sk:{s1:i2}:stock");
    }

    #[test]
    fn a_databases_leaders_and_page_cache_carry_its_identity() {
        let plain = Keys::new("p:");
        let (a, b) = (plain.clone().scoped("aa"), plain.clone().scoped("bb"));
        assert_eq!(plain.leader("relay"), "leader:relay");
        assert_eq!(a.leader("relay"), "leader:relay.aa");
        assert_ne!(a.lock(&a.leader("usher")), b.lock(&b.leader("usher")));
        assert_eq!(a.sale_detail(4), "p:sk:sale:{s4.aa}:detail");
        assert_ne!(a.sale_missing(4), b.sale_missing(4));
        assert_eq!(a.sale_bloom(), "p:sk:{sales.aa}:bloom");
        assert!(a.sale_bloom_rebuild("x").starts_with("p:sk:{sales.aa}:"));
        assert_ne!(a.page_fill_lock(4), b.page_fill_lock(4));
        // A sale's own keys and the prewarm lock are the sale's, not the database's.
        assert_eq!(a.item(4, 5), b.item(4, 5));
        assert_eq!(a.lock("prewarm:s4"), plain.lock("prewarm:s4"));
    }

    #[test]
    fn a_rooms_keys_carry_the_uid_when_the_sales_do() {
        let k = Keys::new("");
        assert_eq!(k.room(3, None).board, "sk:{q3}:board");
        let room = k.room(3, Some(0xab));
        assert_eq!(hash_tag(&room.board), "q3.000000000000000000000000000000ab");
        for key in [&room.counters, &room.finished, &room.bucket(7)] {
            assert_eq!(hash_tag(key), hash_tag(&room.board), "{key}");
        }
        assert_ne!(room.board, k.room(3, Some(0xac)).board);
    }
}
