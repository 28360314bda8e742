//! `seckill serve` SIGKILLed mid-stampede: after a restart, the relay delivers every reservation
//! it had confirmed to Kafka, and nothing Redis does not know.

use std::collections::HashSet;

use crate::support::{kill_child, order_ids_in_topic, ready_child, spawn_process};

#[tokio::test]
async fn a_service_killed_mid_stampede_still_delivers_every_confirmed_reservation() {
    let (settings, config, remote, mut child) = ready_child("serve").await;
    let (sale_id, item, stampede) = remote.busy_sale(32, 300).await;
    kill_child(&mut child);
    let confirmed = stampede.finish().await;

    // Restart: the relay re-emits whatever the dead process had not delivered.
    let mut child = spawn_process("serve", &config);
    remote.wait_ready().await;
    let seen = order_ids_in_topic(&settings.kafka.brokers, &settings.kafka.topic, &confirmed).await;
    assert!(confirmed.is_subset(&seen));
    // Nothing in Kafka that Redis does not know: every id sent is in the ledger.
    let redis = seckill::stores::redis::RedisPool::connect(&settings.redis)
        .await
        .unwrap();
    let keys = seckill::stores::redis::keys::Keys::new(&settings.redis.key_prefix);
    let db = sqlx::MySqlPool::connect(settings.mysql.url.expose())
        .await
        .unwrap();
    let keys = crate::support::item_ref_in(&db, sale_id, item)
        .await
        .keys(&keys, seckill::stores::redis::keys::Holder::Whole);
    let ledger: HashSet<String> = crate::support::redis_ledger(&redis, keys, sale_id, item)
        .await
        .events
        .keys()
        .map(ToString::to_string)
        .collect();
    assert!(
        seen.is_subset(&ledger),
        "every delivered order is a ledger entry"
    );
    assert!(confirmed.is_subset(&ledger));
    kill_child(&mut child);
}
