//! `seckill consume` SIGKILLed while orders keep coming and restarted a second later, within its
//! session timeout: the broker may leave it short of partitions, the watchdog rejoins, and every
//! confirmed order reaches MySQL.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use seckill::config::Settings;
use sqlx::MySqlPool;

use super::log_dir;
use crate::support::{
    STACK, Shoppers, eventually, kill_child, metrics_at, order_ids, order_rows,
    spawn_process_logged, spawn_roles, test_settings, write_config,
};

/// Session timeout of the consumer group (see `consumer`): the yardstick for resuming.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The restarted consumer as its metrics show it: partitions held and rejoins so far.
async fn consumer_figures(http: &reqwest::Client, admin: &str) -> Option<(i64, i64)> {
    let text = metrics_at(http, admin).await?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as i64)
    };
    Some((
        value("seckill_consumer_assigned_partitions")?,
        value("seckill_consumer_rejoins_total")?,
    ))
}

/// Order ids of `confirmed` that MySQL does not hold.
async fn not_persisted(db: &MySqlPool, item: u64, confirmed: &HashSet<String>) -> usize {
    let have = order_ids(db, item).await.unwrap_or_default();
    confirmed.iter().filter(|id| !have.contains(*id)).count()
}

#[tokio::test]
async fn a_consumer_restarted_within_its_session_timeout_resumes_persisting() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.limits.global_per_sec = 200;
    settings.limits.global_burst = 20;
    let partitions = settings.kafka.partitions as i64;
    let app = spawn_roles(settings, false).await;
    let (sale, item) = app.create_live_sale(100_000, 1).await;
    let shoppers = Shoppers::start(&app.base, sale, item, 16, 10_000_000);
    let mut consumer_settings: Settings = app.settings().clone();
    crate::support::fixed_ports(&mut consumer_settings);
    let config = write_config(&consumer_settings);
    // A stand-alone consumer serves its probes and metrics on its HTTP address.
    let admin = format!("http://{}", consumer_settings.http.addr);
    let logs = log_dir();
    let log = logs.join("consume.log");
    let mut consumer = spawn_process_logged("consume", &config, &log);
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (order_rows(&db, item).await.unwrap_or(-1) > 100).then_some(()) }
    })
    .await;

    // Killed while orders keep coming, and started again a second later, as a supervisor does:
    // the dead member still counts in the group when the new one joins.
    kill_child(&mut consumer);
    let killed = Instant::now();
    let confirmed_at_kill = shoppers.confirmed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Instant::now();
    let mut consumer = spawn_process_logged("consume", &config, &log);
    let watch = watch_consumer(app.http.clone(), admin, partitions, killed);
    tokio::time::sleep(SESSION_TIMEOUT).await;
    let confirmed = shoppers.stop().await;
    assert!(
        confirmed.len() > confirmed_at_kill,
        "orders kept being produced while the consumer was down and rejoining ({confirmed_at_kill} at the kill, {} at the stop)",
        confirmed.len()
    );

    // Every confirmed order must reach MySQL: every partition consumed again.
    let mut missing = usize::MAX;
    while restarted.elapsed() < SESSION_TIMEOUT * 6 {
        missing = not_persisted(&db, item, &confirmed).await;
        if missing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    kill_child(&mut consumer);
    let (left_short, rejoins) = watch.finish().await;
    eprintln!(
        "consumer restart: {} confirmed, {missing} not persisted {:?} after the restart; left short of partitions after the dead member's session: {left_short}; rejoins: {rejoins}",
        confirmed.len(),
        restarted.elapsed()
    );
    assert_eq!(
        missing,
        0,
        "confirmed orders never reached MySQL after the consumer's restart (log {})",
        log.display()
    );
    if left_short {
        assert!(
            rejoins >= 1,
            "the broker left the member without partitions and it never rejoined (log {})",
            log.display()
        );
    }
    let _ = std::fs::remove_dir_all(logs);
}

/// Samples a restarted consumer's metrics until [`ConsumerWatch::finish`].
struct ConsumerWatch {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<(bool, i64)>,
}

impl ConsumerWatch {
    /// Whether the member held fewer partitions than the topic has, without having rejoined,
    /// once the dead member's session was over (plus a margin for a healthy broker's
    /// rebalance); and how often it rejoined.
    async fn finish(self) -> (bool, i64) {
        self.stop.cancel();
        self.task.await.unwrap()
    }
}

fn watch_consumer(
    http: reqwest::Client,
    base: String,
    partitions: i64,
    killed: Instant,
) -> ConsumerWatch {
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let (mut short, mut rejoins) = (false, 0);
        while !token.is_cancelled() {
            if let Some((held, rejoined)) = consumer_figures(&http, &base).await {
                rejoins = rejoined;
                let settled = killed.elapsed() > SESSION_TIMEOUT + Duration::from_secs(2);
                short |= settled && rejoined == 0 && held < partitions;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (short, rejoins)
    });
    ConsumerWatch { stop, task }
}
