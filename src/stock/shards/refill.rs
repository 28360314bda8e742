//! Refilling a buyer's shard that ran short: from the central bucket, else from the richest
//! other shard; one refill per shard at a time in a process.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{Move, Refill, ShardedItem, allotment, holders};
use crate::{
    stock::{DeductOutcome, DeductRequest, StockError, StockService, scripts::VersionedScript},
    stores::redis::keys::Holder,
};

impl StockService {
    /// Brings units to `shard`, whose buyer asked for `quantity` more than it holds: from the
    /// central bucket, else half of the richest other shard's stock.
    ///
    /// # Errors
    /// Redis failed, or a script broke its contract.
    pub async fn refill(
        &self,
        item: &ShardedItem<'_>,
        shard: Holder,
        quantity: u32,
    ) -> Result<Refill, StockError> {
        let started_with: Option<u64> = redis::cmd("HGET")
            .arg(self.holder_keys(item, shard).meta)
            .arg("initial_stock")
            .query_async(&mut self.redis().get())
            .await?;
        let allot = allotment(started_with.unwrap_or(1), quantity);
        match self
            .move_units(item, Holder::Central, shard, allot, 1)
            .await?
        {
            Move::Moved(_) => return Ok(Refill::Arrived),
            Move::InFlight => return Ok(Refill::Moving),
            Move::Short(_) | Move::Refused(_) => {}
        }
        let stocks = self.holder_stocks(item).await?;
        let donor = holders(item.shards)
            .into_iter()
            .zip(stocks)
            .filter(|(h, _)| *h != shard && *h != Holder::Central)
            .max_by_key(|(_, stock)| *stock);
        if let Some((donor, stock)) = donor.filter(|(_, stock)| *stock > 0) {
            let want = (stock as u64).div_ceil(2).max(u64::from(quantity));
            return Ok(match self.move_units(item, donor, shard, want, 1).await? {
                Move::Moved(_) => Refill::Arrived,
                Move::InFlight | Move::Short(_) | Move::Refused(_) => Refill::Moving,
            });
        }
        // Nothing left to take: give what is on its way, whoever took it.
        if self.settle_moves(item, Duration::ZERO).await? > 0 {
            return Ok(Refill::Arrived);
        }
        // A move given between the first read and the pending ones shows now: every give
        // lands before its pending record goes.
        let again = self.holder_stocks(item).await?;
        let holders = holders(item.shards);
        if let Some((holder, _)) = holders.iter().zip(&again).find(|(_, s)| **s > 0) {
            return Ok(if *holder == shard {
                Refill::Arrived
            } else {
                Refill::Moving
            });
        }
        Ok(Refill::Empty)
    }
}

/// One refill at a time per shard in this process: buyers who found the shard short while a
/// refill ran take its result instead of starting their own, and an empty answer stands for
/// [`EMPTY_FOR`] (the probe reads every holder).
#[derive(Default)]
pub(crate) struct Refills {
    lanes: std::sync::Mutex<HashMap<(u64, u64, Holder), Arc<RefillLane>>>,
}

#[derive(Default)]
struct RefillLane {
    runs: AtomicU64,
    last: tokio::sync::Mutex<Option<(Instant, Refill)>>,
}

/// How long "no unit anywhere" is believed before the holders are read again.
const EMPTY_FOR: Duration = Duration::from_millis(200);

impl Refills {
    fn lane(&self, item: &ShardedItem<'_>, shard: Holder) -> Arc<RefillLane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry((item.sale_id, item.item_id, shard))
            .or_default()
            .clone()
    }
}

impl StockService {
    /// After a shard answered short: refill it (one refill per shard at a time) and deduct
    /// again, a few times; `sold_out` only when no other holder has a unit.
    pub(in crate::stock) async fn deduct_sharded(
        &self,
        script: &Arc<VersionedScript>,
        req: &DeductRequest<'_>,
        mut outcome: DeductOutcome,
    ) -> Result<DeductOutcome, StockError> {
        let item = ShardedItem {
            sale_id: req.sale_id,
            item_id: req.item_id,
            sale_uid: req.sale_uid,
            key_uid: crate::stock::key_uid(req.script_version, req.sale_uid),
            shards: req.shards,
        };
        let shard = req.holder();
        for _ in 0..REFILLS_PER_BUY {
            let DeductOutcome::SoldOut { .. } = outcome else {
                return Ok(outcome);
            };
            let lane = self.refills.lane(&item, shard);
            let seen = lane.runs.load(Ordering::Acquire);
            let mut last = lane.last.lock().await;
            let result = match *last {
                // Another buyer's refill ran while this one waited: take its result.
                Some((_, result)) if lane.runs.load(Ordering::Acquire) != seen => result,
                Some((at, Refill::Empty)) if at.elapsed() < EMPTY_FOR => Refill::Empty,
                _ => {
                    let result = self.refill(&item, shard, req.quantity).await?;
                    *last = Some((Instant::now(), result));
                    lane.runs.fetch_add(1, Ordering::AcqRel);
                    result
                }
            };
            drop(last);
            match result {
                Refill::Arrived => outcome = self.batcher.deduct(script, req).await?,
                Refill::Moving => return Ok(DeductOutcome::Moving),
                Refill::Empty => return Ok(outcome),
            }
        }
        Ok(match outcome {
            DeductOutcome::SoldOut { .. } => DeductOutcome::Moving,
            other => other,
        })
    }
}

/// Refills one buy may wait for before it is answered "retry" (others took each refill).
const REFILLS_PER_BUY: usize = 3;
