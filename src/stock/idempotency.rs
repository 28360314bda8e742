//! Idempotency keys on the buy path: which order id a request gets, and whether a buyer's key
//! reserved before. Before v5 an idempotency hash answers; from v5 the key derives the order id
//! and the ledger answers (see [`super::compact`]).

use redis::AsyncCommands;
use uuid::Uuid;

use super::{StockError, StockService, compact, ledger};

impl StockService {
    /// True when `user` reserved with idempotency `key` on the item before: an entry in the
    /// idempotency hash, or (v5) the order id the key derives in the ledger.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn knows_key(
        &self,
        meta: &crate::stores::mysql::sales::ItemMeta,
        user: &str,
        key: &str,
    ) -> Result<bool, StockError> {
        let keys = super::ItemRef::from(meta).buyer_keys(&self.keys, user);
        let mut conn = self.redis.get();
        if crate::domain::script_version::has_compact_ledger(&meta.script_version) {
            let id = compact::derived_order_id(&meta.sale_uid, meta.item_id, user, key);
            let ledger =
                ledger::ItemLedger::open(&mut conn, keys, meta.sale_id, meta.item_id).await?;
            return Ok(ledger.contains(&mut conn, &id).await?);
        }
        Ok(conn.hexists(&keys.idem, format!("{user}\0{key}")).await?)
    }

    /// The order id a new reservation gets: derived from the key when the sale's ledger is
    /// compact and the buyer sent one (a retry then finds its first order), else a fresh id
    /// naming the item and the buyer (see [`crate::domain::order_id`]).
    pub(crate) fn new_order_id(
        meta: &crate::stores::mysql::sales::ItemMeta,
        user: &str,
        idempotency_key: Option<&str>,
    ) -> Uuid {
        match idempotency_key {
            Some(key)
                if crate::domain::script_version::has_compact_ledger(&meta.script_version) =>
            {
                compact::derived_order_id(&meta.sale_uid, meta.item_id, user, key)
            }
            _ => crate::domain::order_id::fresh(meta.item_id, user),
        }
    }
}
