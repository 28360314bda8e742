//! prewarm: its modes and codes, the sale's identity stamped on the state, and state it must
//! not write over (reservations, another sale's, keys without meta).

use chrono::Utc;
use redis::AsyncCommands;
use seckill::stock::ItemRef;
use seckill::stock::{PrewarmItem, PrewarmMode, PrewarmOutcome, StockService};

use super::{figures, item, on_sale, reserve, service, warm};

live!(
    return_codes,
    a_lost_stock_key_is_not_warmed_over,
    stamps_the_sale_and_refuses_another_sales_state,
    keys_without_meta_are_not_warmed_over,
    force_before_the_start_clears_the_released_record,
);

async fn prewarm(s: &StockService, item: &PrewarmItem, mode: PrewarmMode) -> PrewarmOutcome {
    s.prewarm(item, mode).await.unwrap()
}

async fn return_codes(version: &str) {
    let s = service().await;
    let live = on_sale(version, 10, 2);
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Refresh).await,
        PrewarmOutcome::NotWarmed
    );
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Warm).await,
        PrewarmOutcome::Warmed { remaining: 10 }
    );
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Warm).await,
        PrewarmOutcome::AlreadyWarmed { remaining: 10 }
    );
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Refresh).await,
        PrewarmOutcome::Refreshed { remaining: 10 }
    );
    reserve(&s, version, "u1", 1).await;
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Force).await,
        PrewarmOutcome::HasReservations { remaining: 9 }
    );
    let mut expired = live.clone();
    expired.expire_at_ms = Utc::now().timestamp_millis() - 1;
    assert_eq!(
        prewarm(&s, &expired, PrewarmMode::Warm).await,
        PrewarmOutcome::BadExpiry
    );
    let mut empty_window = live.clone();
    empty_window.ends_at_ms = empty_window.starts_at_ms;
    assert_eq!(
        prewarm(&s, &empty_window, PrewarmMode::Warm).await,
        PrewarmOutcome::BadArgument
    );
    assert_eq!(figures(&s).await.stock, Some(9), "nothing was written");
    // A forced warm of an item without reservations overwrites it.
    let fresh = warm(version, 10, 2).await;
    let more = PrewarmItem { stock: 50, ..live };
    assert_eq!(
        prewarm(&fresh, &more, PrewarmMode::Force).await,
        PrewarmOutcome::Warmed { remaining: 50 }
    );
}

/// The stock key lost while reservations stand: a warm writes no new stock over them, nor does
/// a forced one; the buyers are kept.
async fn a_lost_stock_key_is_not_warmed_over(version: &str) {
    let s = warm(version, 10, 2).await;
    reserve(&s, version, "u1", 1).await;
    let keys = s.keys().item(1, 1);
    let _: i64 = s.redis().get().del(&keys.stock).await.unwrap();
    let live = on_sale(version, 10, 2);
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Warm).await,
        PrewarmOutcome::AlreadyWarmed { remaining: 0 }
    );
    assert_eq!(
        prewarm(&s, &live, PrewarmMode::Force).await,
        PrewarmOutcome::HasReservations { remaining: 0 }
    );
    let f = figures(&s).await;
    assert_eq!(f.stock, None);
    assert_eq!(f.buyers["u1"], 1, "buyers kept");
}

/// An item of another sale with the same ids (another database, a restored backup): every mode
/// refuses and nothing changes.
async fn stamps_the_sale_and_refuses_another_sales_state(version: &str) {
    let s = warm(version, 10, 2).await;
    let state = s.state(ItemRef::whole(1, 1)).await.unwrap();
    assert_eq!(state.sale_uid.as_deref(), Some(super::UID));
    assert!(state.present && !state.restoring);
    let theirs = PrewarmItem {
        sale_uid: "sale-b".into(),
        ..on_sale(version, 99, 2)
    };
    for mode in [
        PrewarmMode::Warm,
        PrewarmMode::Force,
        PrewarmMode::Refresh,
        PrewarmMode::RestoreBegin,
        PrewarmMode::RestoreEnd,
    ] {
        assert_eq!(
            s.prewarm_with_token(&theirs, mode, "t").await.unwrap(),
            PrewarmOutcome::ForeignState,
            "{mode:?}"
        );
    }
    assert_eq!(figures(&s).await.stock, Some(10));
    let state = s.state(ItemRef::whole(1, 1)).await.unwrap();
    assert_eq!(state.sale_uid.as_deref(), Some(super::UID));
    let mine = on_sale(version, 10, 2);
    assert_eq!(
        prewarm(&s, &mine, PrewarmMode::Refresh).await,
        PrewarmOutcome::Refreshed { remaining: 10 }
    );
    let anonymous = PrewarmItem {
        sale_uid: String::new(),
        ..mine
    };
    let fresh = service().await;
    assert_eq!(
        prewarm(&fresh, &anonymous, PrewarmMode::Warm).await,
        PrewarmOutcome::BadArgument
    );
}

/// Keys without meta are state of unknown origin: neither a warm nor a rebuild writes over them.
async fn keys_without_meta_are_not_warmed_over(version: &str) {
    let s = service().await;
    let keys = s.keys().item(1, 1);
    let _: () = s.redis().get().set(&keys.stock, 3).await.unwrap();
    let mine = on_sale(version, 10, 2);
    assert_eq!(
        prewarm(&s, &mine, PrewarmMode::Warm).await,
        PrewarmOutcome::ForeignState
    );
    assert_eq!(
        s.prewarm_with_token(&mine, PrewarmMode::RestoreBegin, "t")
            .await
            .unwrap(),
        PrewarmOutcome::ForeignState
    );
    assert_eq!(figures(&s).await.stock, Some(3));
    assert!(!s.state(ItemRef::whole(1, 1)).await.unwrap().present);
}

/// A forced warm before the start (no reservations) clears a `released` record with the rest.
async fn force_before_the_start_clears_the_released_record(version: &str) {
    let s = service().await;
    let upcoming = item(version, 5, 1, 60_000, 60_000);
    prewarm(&s, &upcoming, PrewarmMode::Warm).await;
    let keys = s.keys().item(1, 1);
    let _: () = s.redis().get().hset(&keys.released, "x", 1).await.unwrap();
    assert_eq!(
        prewarm(&s, &upcoming, PrewarmMode::Force).await,
        PrewarmOutcome::Warmed { remaining: 5 }
    );
    let left: u64 = s.redis().get().hlen(&keys.released).await.unwrap();
    assert_eq!(left, 0);
}
