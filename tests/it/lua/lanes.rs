//! The batching lanes that carry deduct requests: not a script contract, run with the current
//! version.

use std::time::Duration;

use super::{CURRENT, deduct};
use seckill::stock::{DeductOutcome, StockError};

#[test]
fn lanes_of_a_runtime_that_ended_are_started_again() {
    let first = tokio::runtime::Runtime::new().unwrap();
    let s = first.block_on(async {
        let s = super::warm(CURRENT, 5, 2).await;
        let (_, out) = deduct(&s, CURRENT, "a", 1, None).await;
        assert!(matches!(out, DeductOutcome::Reserved { .. }), "{out:?}");
        s
    });
    drop(first); // its lane tasks end with it
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        // The first runtime's Redis connections break with it and reconnect on use, so the
        // first tries may fail on Redis; none may fail because the lane is gone.
        let mut last = None;
        for _ in 0..20 {
            let id = super::order_id(CURRENT, "b", None);
            let out = super::try_deduct(&s, CURRENT, id, "b", 1, None).await;
            assert!(
                !matches!(out, Err(StockError::Stopped)),
                "the lane was not restarted"
            );
            if let Ok(DeductOutcome::Reserved { .. }) = out {
                return;
            }
            last = Some(format!("{out:?}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no reservation after the restart: {last:?}");
    });
}
