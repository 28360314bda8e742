//! A local sold-out flag per item: set when Redis says an item is sold out, trusted for a short
//! interval, then Redis is asked again (stock can come back if an operator re-warms an item).
//! After the sell-out, the losers are answered from memory and never touch Redis.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

/// How long a local sold-out flag is trusted before Redis is asked again: units that come back
/// (a cancel, an expiry) are announced at once, so this only bounds a missed announcement.
pub(crate) const RECHECK_AFTER: Duration = Duration::from_millis(500);

/// Per-item sold-out flags with an expiry.
pub struct SoldOutFlags {
    recheck_after: Duration,
    flags: RwLock<HashMap<u64, Instant>>,
}

impl SoldOutFlags {
    /// Flags trusted for `recheck_after`.
    pub fn new(recheck_after: Duration) -> Self {
        Self {
            recheck_after,
            flags: RwLock::new(HashMap::new()),
        }
    }

    /// True while `item_id` is flagged sold out.
    pub(crate) fn is_sold_out(&self, item_id: u64) -> bool {
        self.is_sold_out_at(item_id, Instant::now())
    }

    /// As [`SoldOutFlags::is_sold_out`] at `now` (a caller that has read the clock already).
    pub(crate) fn is_sold_out_at(&self, item_id: u64, now: Instant) -> bool {
        let flags = self.flags.read().unwrap_or_else(|e| e.into_inner());
        flags.get(&item_id).is_some_and(|until| now < *until)
    }

    /// Flags `item_id` sold out for the recheck interval (a no-op while it already is, so
    /// retries reaching the script after the sell-out do not queue for the write lock).
    pub(crate) fn mark(&self, item_id: u64) {
        if self.is_sold_out(item_id) {
            return;
        }
        let mut flags = self.flags.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        flags.retain(|_, until| *until > now);
        flags.insert(item_id, now + self.recheck_after);
    }

    /// Drops `item_id`'s flag: units came back (a cancelled or expired order), so the next buy
    /// asks Redis at once.
    pub fn clear(&self, item_id: u64) {
        let mut flags = self.flags.write().unwrap_or_else(|e| e.into_inner());
        flags.remove(&item_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_holds_for_the_interval_then_lapses() {
        let f = SoldOutFlags::new(Duration::from_millis(30));
        assert!(!f.is_sold_out(1));
        f.mark(1);
        assert!(f.is_sold_out(1));
        assert!(!f.is_sold_out(2));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!f.is_sold_out(1));
    }

    #[test]
    fn a_cleared_flag_is_gone_before_its_time() {
        let f = SoldOutFlags::new(Duration::from_secs(60));
        f.mark(1);
        f.clear(1);
        assert!(!f.is_sold_out(1));
    }
}
