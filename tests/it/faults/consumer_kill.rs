//! `seckill consume` SIGKILLed mid-batch, at either side of its MySQL commit: after a restart the
//! batch is redelivered and every order is persisted exactly once.

use std::time::Duration;

use crate::support::{
    STACK, events, kill_child, mysql_figures, produce_events, spawn_process,
    spawn_process_paused_at, spawn_roles, test_settings, wait_for_failpoint, wait_rows_exactly,
    write_config,
};

/// A consumer SIGKILLed at `point` in its first batch, then restarted: every order is persisted
/// exactly once. Returns the rows MySQL held at the kill.
async fn killed_at(point: &str) -> i64 {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.consumer.batch_max = 20;
    // The API runs in-process without a consumer; the consumer is a child process we kill.
    let app = spawn_roles(settings.clone(), false).await;
    let (sale, item) = app.create_live_sale(10_000, 1).await;
    let batch = events(sale, item, 2_000, "k");
    produce_events(app.settings(), &batch).await;
    let config = write_config(app.settings());
    let log = config.with_file_name("consumer.log");
    let mut child = spawn_process_paused_at("consume", &config, &log, point);
    wait_for_failpoint(&log, point).await;
    kill_child(&mut child);
    let at_kill = mysql_figures(app.db(), item).await.0;
    let mut child = spawn_process("consume", &config);
    wait_rows_exactly(app.db(), item, 2_000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        mysql_figures(app.db(), item).await,
        (2_000, 2_000, 8_000),
        "killed at {point}: every order once, stock decremented once"
    );
    kill_child(&mut child);
    at_kill
}

#[tokio::test]
async fn a_consumer_killed_before_its_mysql_commit_loses_nothing_after_restart() {
    // The batch's rows were written but not committed: MySQL holds none of them, and its
    // offsets must not be committed either (or the restart would skip the batch).
    let at_kill = killed_at("consumer.before_mysql_commit").await;
    assert_eq!(at_kill, 0, "nothing committed at the kill");
}

#[tokio::test]
async fn a_consumer_killed_between_its_mysql_commit_and_its_offset_commit_persists_once() {
    // The batch is in MySQL, its offsets are not committed: the restart gets it again and
    // MySQL deduplicates it.
    let at_kill = killed_at("consumer.after_mysql_commit").await;
    assert!(
        (1..=20).contains(&at_kill),
        "one batch committed at the kill, got {at_kill} rows"
    );
}
