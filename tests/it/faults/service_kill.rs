//! `seckill serve` SIGKILLed mid-stampede: after a restart, the relay delivers every reservation
//! it had confirmed to Kafka, and nothing Redis does not know.

use std::collections::HashSet;

use crate::support::{
    Remote, STACK, order_ids_in_topic, spawn_process, test_settings, write_config,
};

#[tokio::test]
async fn a_service_killed_mid_stampede_still_delivers_every_confirmed_reservation() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    crate::support::fixed_ports(&mut settings);
    let config = write_config(&settings);
    let remote = Remote::at(&settings);
    let _http = remote.http.clone();
    let mut child = spawn_process("serve", &config);
    remote.wait_ready().await;
    let (sale_id, item) = remote.create_live_sale(100_000, 1).await;
    let stampede = remote.stampede(sale_id, item, 32);
    stampede.confirmed_at_least(300).await;
    child.kill().expect("SIGKILL while buys are in flight");
    child.wait().unwrap();
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
    let ledger: HashSet<String> = crate::support::redis_ledger(&redis, &keys, sale_id, item)
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
    child.kill().unwrap();
    child.wait().unwrap();
}
