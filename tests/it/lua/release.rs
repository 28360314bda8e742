//! release: the units of closed orders go back once per order, and only to this sale's state.

use seckill::stock::{DeductOutcome, ReleaseOutcome, scripts::ScriptKind};
use uuid::Uuid;

use super::{
    UID, deduct, expire_with_the_sale, figures, invoke, label, ledger, release, reserve, service,
    warm,
};

live!(
    units_go_back_once_per_order,
    a_released_order_keeps_its_key,
    refused_without_this_sales_state,
);

async fn units_go_back_once_per_order(version: &str) {
    let s = warm(version, 10, 3).await;
    let a = reserve(&s, version, "u", 2).await;
    let b = reserve(&s, version, "u", 1).await;
    let f = figures(&s).await;
    assert_eq!((f.stock, f.buyers["u"], f.released_units), (Some(7), 3, 0));

    let unknown = Uuid::now_v7();
    assert_eq!(
        release(&s, version, UID, &[a, unknown]).await,
        [
            ReleaseOutcome::Released { units: 2 },
            ReleaseOutcome::NotInLedger
        ]
    );
    let once = figures(&s).await;
    assert_eq!((once.stock, once.buyers["u"]), (Some(9), 1));
    assert_eq!(
        (once.released.clone(), once.released_units),
        ([(a, 2)].into(), 2)
    );
    once.assert_balanced(10);
    // Asked again (a redelivery, a sweep after a crash): nothing changes.
    assert_eq!(
        release(&s, version, UID, &[a, a]).await,
        [
            ReleaseOutcome::Already { units: 2 },
            ReleaseOutcome::Already { units: 2 }
        ]
    );
    assert_eq!(figures(&s).await, once);
    // The same order twice in one call counts once; the buyer's last unit frees them.
    assert_eq!(
        release(&s, version, UID, &[b, b]).await,
        [
            ReleaseOutcome::Released { units: 1 },
            ReleaseOutcome::Already { units: 1 }
        ]
    );
    let f = figures(&s).await;
    assert_eq!((f.stock, f.released_units), (Some(10), 3));
    assert!(f.buyers.is_empty(), "{f:?}");
    assert_eq!(f.ledger.len(), 2, "the ledger keeps every reservation");
    f.assert_balanced(10);
    let l = ledger(&s).await;
    let record = if l.is_compact() {
        l.ledger_keys()
    } else {
        vec![l.keys.released.clone()]
    };
    expire_with_the_sale(&s, &record).await;
    // The units sell again, within the buyer's limit of 3.
    reserve(&s, version, "u", 3).await;
}

/// After its release, a key still answers its first order (a retry must not buy again).
async fn a_released_order_keeps_its_key(version: &str) {
    let s = warm(version, 10, 3).await;
    let (a, _) = deduct(&s, version, "u", 2, Some("k")).await;
    assert_eq!(
        release(&s, version, UID, &[a]).await,
        [ReleaseOutcome::Released { units: 2 }]
    );
    let (_, out) = deduct(&s, version, "u", 1, Some("k")).await;
    assert_eq!(
        out,
        DeductOutcome::Replayed {
            order_id: a,
            quantity: 2
        }
    );
    assert_eq!(figures(&s).await.stock, Some(10));
}

/// No state: NOT_WARMED; another sale's: FOREIGN_STATE and nothing changes; no order ids: an
/// error naming the script.
async fn refused_without_this_sales_state(version: &str) {
    let empty = service().await;
    assert_eq!(
        release(&empty, version, UID, &[Uuid::now_v7()]).await,
        [ReleaseOutcome::NotWarmed]
    );
    let s = warm(version, 10, 3).await;
    let a = reserve(&s, version, "u", 1).await;
    let before = figures(&s).await;
    assert_eq!(
        release(&s, version, "another-sale", &[a, a]).await,
        [ReleaseOutcome::ForeignState, ReleaseOutcome::ForeignState]
    );
    assert_eq!(figures(&s).await, before);
    let err = invoke::<Vec<redis::Value>>(&s, ScriptKind::Release, version, |cmd| {
        cmd.arg(UID);
    })
    .await
    .expect_err("no order ids");
    let script = label(&s, ScriptKind::Release, version);
    assert!(err.to_string().contains(&script), "{script}: {err}");
}
