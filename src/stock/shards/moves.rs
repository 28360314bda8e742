//! Moving units between two holders of a sharded item, and giving again the moves whose
//! caller died halfway.

use std::time::Duration;

use redis::Value;
use uuid::Uuid;

use super::{Move, ShardedItem, holders, name, parse_name};
use crate::{
    stock::{ItemRef, StockError, StockService, UnexpectedReply, outcome::int_at},
    stores::redis::keys::{Holder, ItemKeys},
};

impl StockService {
    /// The keys of `holder` of the item.
    pub(super) fn holder_keys(&self, item: &ShardedItem<'_>, holder: Holder) -> ItemKeys {
        self.keys()
            .holder(item.sale_id, item.item_id, item.key_uid, holder)
    }

    /// Moves up to `want` units (none unless `least` are there) from one holder to another.
    ///
    /// # Errors
    /// Redis failed taking (nothing moved), or a script broke its contract.
    pub async fn move_units(
        &self,
        item: &ShardedItem<'_>,
        from: Holder,
        to: Holder,
        want: u64,
        least: u64,
    ) -> Result<Move, StockError> {
        // The id starts with the take's time (Unix ms, hex), so a pass can leave young moves
        // to the process that is giving them.
        let id = format!("{:x}-{}", now_ms(), Uuid::new_v4().simple());
        let source = self.holder_keys(item, from);
        let mut conn = self.redis().get();
        let taken: Vec<Value> = self
            .scripts()
            .moves()
            .take
            .invoke(
                &mut conn,
                &[
                    &source.stock,
                    &source.meta,
                    &source.moves_out,
                    &source.moves_pending,
                ],
                |cmd| {
                    cmd.arg(item.sale_uid)
                        .arg(&id)
                        .arg(name(to))
                        .arg(want)
                        .arg(least);
                },
            )
            .await?;
        let units = match (int_at(&taken, 0), int_at(&taken, 1)) {
            (Some(1), Some(units)) if units > 0 => units as u64,
            (Some(-5), Some(remaining)) => return Ok(Move::Short(remaining)),
            (Some(code), _) if code < 0 => return Ok(Move::Refused(code)),
            _ => return Err(UnexpectedReply::new("move_take", taken).into()),
        };
        // Fault tests kill the process here: taken, not given, the move stays pending.
        crate::observe::failpoint::pause_if_armed("shards.move_taken").await;
        match self.give(item, from, to, &id, units).await {
            Ok(true) => Ok(Move::Moved(units)),
            Ok(false) => Ok(Move::InFlight),
            Err(e) => {
                tracing::warn!(
                    sale_id = item.sale_id,
                    item_id = item.item_id,
                    from = %from,
                    to = %to,
                    units,
                    error.message = %e,
                    "a stock move was taken but not given; it stays pending and is given again"
                );
                Ok(Move::InFlight)
            }
        }
    }

    /// Gives move `id` to `to` and clears it from `from`'s pending moves. False when the
    /// receiver cannot take it now (the move stays pending).
    async fn give(
        &self,
        item: &ShardedItem<'_>,
        from: Holder,
        to: Holder,
        id: &str,
        units: u64,
    ) -> Result<bool, StockError> {
        let target = self.holder_keys(item, to);
        let mut conn = self.redis().get();
        let given: Vec<Value> = self
            .scripts()
            .moves()
            .give
            .invoke(
                &mut conn,
                &[&target.stock, &target.meta, &target.moves_in],
                |cmd| {
                    cmd.arg(item.sale_uid).arg(id).arg(name(from)).arg(units);
                },
            )
            .await?;
        match int_at(&given, 0) {
            Some(1 | 2) => {
                let pending = self.holder_keys(item, from).moves_pending;
                let _: i64 = redis::cmd("HDEL")
                    .arg(&pending)
                    .arg(id)
                    .query_async(&mut conn)
                    .await?;
                Ok(true)
            }
            Some(code) if code < 0 => Ok(false),
            _ => Err(UnexpectedReply::new("move_give", given).into()),
        }
    }

    /// Gives every pending move of the item taken at least `older_than` ago again (a caller
    /// died between take and give). Returns the units that arrived.
    ///
    /// # Errors
    /// Redis failed, or a script broke its contract.
    pub async fn settle_moves(
        &self,
        item: &ShardedItem<'_>,
        older_than: Duration,
    ) -> Result<u64, StockError> {
        let before = now_ms().saturating_sub(older_than.as_millis() as u64);
        let mut arrived = 0;
        for from in holders(item.shards) {
            let pending = self.holder_keys(item, from).moves_pending;
            let mut conn = self.redis().get();
            let moves: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(&pending)
                .query_async(&mut conn)
                .await?;
            for (id, record) in moves {
                let taken_at = id
                    .split_once('-')
                    .and_then(|(t, _)| u64::from_str_radix(t, 16).ok());
                if taken_at.is_some_and(|t| t > before) {
                    continue;
                }
                let parsed = record.split_once(' ').and_then(|(to, units)| {
                    Some((parse_name(to, item.shards)?, units.parse::<u64>().ok()?))
                });
                let Some((to, units)) = parsed else {
                    tracing::error!(sale_id = item.sale_id, item_id = item.item_id, %record, "a pending stock move does not parse; left as it is");
                    continue;
                };
                if self.give(item, from, to, &id, units).await? {
                    tracing::info!(sale_id = item.sale_id, item_id = item.item_id, from = %from, to = %to, units, "a pending stock move was given");
                    arrived += units;
                }
            }
        }
        Ok(arrived)
    }

    /// The remaining units of each holder (absent: 0), in [`holders`] order.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn holder_stocks(&self, item: &ShardedItem<'_>) -> Result<Vec<i64>, StockError> {
        let mut conn = self.redis().get();
        let mut stocks = Vec::new();
        for holder in holders(item.shards) {
            let stock: Option<i64> = redis::cmd("GET")
                .arg(self.holder_keys(item, holder).stock)
                .query_async(&mut conn)
                .await?;
            stocks.push(stock.unwrap_or(0));
        }
        Ok(stocks)
    }
}

impl StockService {
    /// [`StockService::settle_moves`] for an item known by its ids alone: the sale's uid is
    /// read from its central bucket (nothing to settle when that is gone).
    ///
    /// # Errors
    /// Redis failed, or a script broke its contract.
    pub async fn settle_moves_of(
        &self,
        item: ItemRef,
        older_than: Duration,
    ) -> Result<u64, StockError> {
        let meta = item.keys(self.keys(), Holder::Central).meta;
        let uid: Option<String> = redis::cmd("HGET")
            .arg(&meta)
            .arg("sale_uid")
            .query_async(&mut self.redis().get())
            .await?;
        let Some(uid) = uid else {
            return Ok(0);
        };
        let sharded = ShardedItem {
            sale_id: item.sale_id,
            item_id: item.item_id,
            sale_uid: &uid,
            key_uid: item.uid,
            shards: item.shards,
        };
        self.settle_moves(&sharded, older_than).await
    }
}

/// Now, in Unix milliseconds.
fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}
