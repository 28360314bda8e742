//! Redis SIGKILLed and restarted from its AOF mid-sale: every 202 is persisted.

use std::time::Duration;

use super::{rate_limited, sell_out_and_check, stampede_under_way};
use crate::support::{PrivateServer, spawn_with};

#[tokio::test]
async fn redis_sigkilled_and_restarted_from_its_aof_keeps_every_confirmed_order() {
    let redis = PrivateServer::start("redis");
    let settings = rate_limited(&redis.url()).await;
    let app = spawn_with(settings).await;
    let (sale, item, shoppers) = stampede_under_way(&app).await;

    let at_fault = shoppers.confirmed();
    redis.kill_redis_on(redis.port);
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    let ledger =
        crate::support::redis_ledger(app.redis(), app.item_keys(sale, item).await, sale, item)
            .await
            .events
            .len();
    assert!(
        ledger as usize >= at_fault,
        "the AOF brought back every reservation ({ledger} ledger entries, {at_fault} confirmed)"
    );
    sell_out_and_check(&app, shoppers, sale, item, at_fault, "AOF restart").await;
}
