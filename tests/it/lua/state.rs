//! What Redis holds for the test item, read the same way for both ledger layouts.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use seckill::stock::{StockService, ledger::ItemLedger};
use uuid::Uuid;

/// The test item's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Figures {
    /// Remaining units (`None` without a stock key).
    pub stock: Option<i64>,
    /// Units each buyer holds.
    pub buyers: BTreeMap<String, i64>,
    /// Every reservation in the ledger (released ones too) and its units.
    pub ledger: BTreeMap<Uuid, u32>,
    /// Released orders and the units they gave back (v4: the `released` hash; v5: the marked
    /// entries).
    pub released: BTreeMap<Uuid, u32>,
    /// meta `released_units`.
    pub released_units: i64,
    /// Orders waiting in the outbox for Kafka's ack.
    pub outbox: u64,
}

impl Figures {
    /// Units reserved and not given back.
    pub fn held(&self) -> i64 {
        self.ledger.values().map(|&u| i64::from(u)).sum::<i64>() - self.released_units
    }

    /// Asserts `initial == stock + ledger - released`, and that the buyers hold exactly the
    /// units reserved and not given back.
    pub fn assert_balanced(&self, initial: i64) {
        assert_eq!(
            self.stock.unwrap_or(0) + self.held(),
            initial,
            "stock plus the ledger less what was released: {self:?}"
        );
        let released: i64 = self.released.values().map(|&u| i64::from(u)).sum();
        assert_eq!(released, self.released_units, "{self:?}");
        let buyers: i64 = self.buyers.values().sum();
        assert_eq!(buyers, self.held(), "buyers' units: {self:?}");
    }
}

/// The test item's ledger, its layout read from meta.
pub(crate) async fn ledger(s: &StockService) -> ItemLedger {
    ItemLedger::open(&mut s.redis().get(), s.keys().item(1, 1), 1, 1)
        .await
        .unwrap()
}

/// The test item's [`Figures`].
pub(crate) async fn figures(s: &StockService) -> Figures {
    let l = ledger(s).await;
    let keys = &l.keys;
    let mut conn = s.redis().get();
    let stock: Option<i64> = conn.get(&keys.stock).await.unwrap();
    let released_units: Option<i64> = conn.hget(&keys.meta, "released_units").await.unwrap();
    let outbox: u64 = conn.zcard(&keys.outbox).await.unwrap();
    let ledger = l
        .all_events(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, e)| (id, e.quantity))
        .collect();
    Figures {
        stock,
        buyers: l.all_buyers(&mut conn).await.unwrap(),
        ledger,
        released: released(s, &l).await,
        released_units: released_units.unwrap_or(0),
        outbox,
    }
}

async fn released(s: &StockService, l: &ItemLedger) -> BTreeMap<Uuid, u32> {
    let mut conn = s.redis().get();
    if !l.is_compact() {
        let all: Vec<(String, u32)> = conn.hgetall(&l.keys.released).await.unwrap();
        return all
            .into_iter()
            .map(|(id, units)| (id.parse().unwrap(), units))
            .collect();
    }
    crate::support::compact_released(&mut conn, l).await
}

/// Asserts that each of `keys` expires when the item's meta says its state does.
pub(crate) async fn expire_with_the_sale(s: &StockService, keys: &[String]) {
    let mut conn = s.redis().get();
    let meta = s.keys().item(1, 1).meta;
    let expire_at: i64 = conn.hget(&meta, "expire_at_ms").await.unwrap();
    for key in keys {
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(at, expire_at, "{key} expires with the sale");
    }
}
