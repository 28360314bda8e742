//! The broker down during buys: buys are still confirmed from the ledger, the API stays ready, the
//! outbox holds the reservations, and they drain when the broker returns.

use std::{collections::HashSet, time::Duration};

use redis::AsyncCommands;
use reqwest::StatusCode;

use crate::support::{
    PrivateServer, eventually, order_ids_in_topic, reserve_in_turn, spawn_roles, test_settings,
};

#[tokio::test]
async fn buys_during_a_kafka_outage_are_confirmed_and_drain_when_it_returns() {
    let kafka = PrivateServer::start("kafka");
    let brokers = format!("127.0.0.1:{}", kafka.port);
    let mut settings = test_settings(&brokers).await;
    settings.kafka.message_timeout_ms = 2_000;
    let app = spawn_roles(settings, false).await;
    let (sale, item) = app.create_live_sale(1_000, 1).await;
    let before = reserve_in_turn(&app, (sale, item), "before-", 20).await;
    let mut confirmed: HashSet<String> = before.into_iter().collect();
    kafka.stop();
    for u in 0..20 {
        let (s, body) = app.buy(sale, item, &format!("during-{u}"), 1, None).await;
        assert_eq!(
            s,
            StatusCode::ACCEPTED,
            "buys keep being confirmed from the ledger: {body}"
        );
        confirmed.insert(body["order_id"].as_str().unwrap().to_string());
    }
    // The API stays in the load balancer: the outbox holds the reservations meanwhile.
    let r = app.get("/readyz").await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "Kafka down does not make the API unready"
    );
    let keys = app.item_keys(sale, item).await;
    let waiting: u64 = app.redis().get().zcard(&keys.outbox).await.unwrap();
    assert!(
        waiting >= 20,
        "undelivered reservations wait in the outbox ({waiting})"
    );
    // What an operator sees meanwhile: failed deliveries and a backlog in the outbox.
    let metrics = app.services.metrics.clone();
    eventually(Duration::from_secs(30), || {
        let m = metrics.clone();
        async move {
            (m.kafka.produce_errors.get() >= 20 && m.outbox.backlog.get() >= 20).then_some(())
        }
    })
    .await;
    kafka.run("start");
    let seen = order_ids_in_topic(&brokers, &app.settings().kafka.topic, &confirmed).await;
    assert!(confirmed.is_subset(&seen));
    let redis = app.redis().clone();
    eventually(Duration::from_secs(60), || {
        let redis = redis.clone();
        let outbox = keys.outbox.clone();
        async move {
            let n: u64 = redis.get().zcard(&outbox).await.unwrap();
            (n == 0).then_some(())
        }
    })
    .await;
    eventually(Duration::from_secs(30), || {
        let m = metrics.clone();
        async move { (m.outbox.backlog.get() == 0).then_some(()) }
    })
    .await;
}
