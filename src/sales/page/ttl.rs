//! Cache lifetimes: jittered so entries written together do not expire together (avalanche),
//! and capped so no cached copy of a sale outlives the sale's end plus the grace period.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Share of a lifetime that is randomised: a base of 60 s becomes 48–72 s.
pub(crate) const JITTER: f64 = 0.2;
/// Shortest lifetime handed out (a sale about to expire is still cached briefly).
pub(crate) const MIN_TTL: Duration = Duration::from_millis(500);

/// `base` scaled by a factor in `[1 - JITTER, 1 + JITTER)`, chosen by `unit` in `[0, 1)`.
pub(crate) fn jittered(base: Duration, unit: f64) -> Duration {
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    base.mul_f64(factor).max(MIN_TTL)
}

/// A lifetime for a cached copy of a sale ending at `ends_at`: never past `ends_at + grace`.
pub fn capped(
    ttl: Duration,
    ends_at: DateTime<Utc>,
    grace: Duration,
    now: DateTime<Utc>,
) -> Duration {
    let life_left = (ends_at + chrono::Duration::from_std(grace).unwrap_or_default() - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    ttl.min(life_left).max(MIN_TTL.min(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_lifetimes_around_the_base() {
        let base = Duration::from_secs(60);
        assert_eq!(jittered(base, 0.0), Duration::from_secs(48));
        assert_eq!(jittered(base, 0.5), Duration::from_secs(60));
        assert!(jittered(base, 0.999) < Duration::from_secs(72));
    }

    #[test]
    fn a_lifetime_never_outlives_the_sale_plus_grace() {
        let now = Utc::now();
        let grace = Duration::from_secs(10);
        let ends = now + chrono::Duration::seconds(20);
        assert_eq!(
            capped(Duration::from_secs(60), ends, grace, now),
            Duration::from_secs(30)
        );
        assert_eq!(
            capped(Duration::from_secs(5), ends, grace, now),
            Duration::from_secs(5)
        );
        let long_over = now - chrono::Duration::hours(1);
        assert_eq!(
            capped(Duration::from_secs(60), long_over, grace, now),
            MIN_TTL
        );
    }
}
