//! The prewarm script's return codes.

use chrono::Utc;
use redis::AsyncCommands;
use seckill::stock::{DeductOutcome, PrewarmMode, PrewarmOutcome};

use super::{deduct, item, service};

#[tokio::test]
async fn prewarm_return_codes() {
    let s = service().await;
    let live = item(10, 2, -1_000, 60_000);
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Refresh).await.unwrap(),
        PrewarmOutcome::NotWarmed
    );
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::Warmed { remaining: 10 }
    );
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::AlreadyWarmed { remaining: 10 }
    );
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Refresh).await.unwrap(),
        PrewarmOutcome::Refreshed { remaining: 10 }
    );
    let (_, out) = deduct(&s, "u1", 1, None).await;
    assert!(matches!(out, DeductOutcome::Reserved { remaining: 9, .. }));
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Force).await.unwrap(),
        PrewarmOutcome::HasReservations { remaining: 9 }
    );
    let mut expired = live.clone();
    expired.expire_at_ms = Utc::now().timestamp_millis() - 1;
    assert_eq!(
        s.prewarm(&expired, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::BadExpiry
    );
    let mut empty_window = live.clone();
    empty_window.ends_at_ms = empty_window.starts_at_ms;
    assert_eq!(
        s.prewarm(&empty_window, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::BadArgument
    );
    // A forced warm of an item without reservations overwrites it.
    let fresh = service().await;
    fresh.prewarm(&live, PrewarmMode::Warm).await.unwrap();
    let mut more = live.clone();
    more.stock = 50;
    assert_eq!(
        fresh.prewarm(&more, PrewarmMode::Force).await.unwrap(),
        PrewarmOutcome::Warmed { remaining: 50 }
    );
}

#[tokio::test]
async fn warming_over_a_missing_stock_key_with_reservations_is_refused() {
    let s = service().await;
    let live = item(10, 2, -1_000, 60_000);
    s.prewarm(&live, PrewarmMode::Warm).await.unwrap();
    deduct(&s, "u1", 1, None).await;
    let keys = s.keys().item(1, 1);
    let _: i64 = s.redis().get().del(&keys.stock).await.unwrap();
    assert_eq!(
        s.prewarm(&live, PrewarmMode::Warm).await.unwrap(),
        PrewarmOutcome::HasReservations { remaining: 0 }
    );
    let buyers: i64 = s.redis().get().hlen(&keys.buyers).await.unwrap();
    assert_eq!(buyers, 1, "buyers kept");
}
