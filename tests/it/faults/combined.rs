//! Every fault in one rate-limited sale, tried from outside as an operator would see it:
//! `seckill serve` and `seckill consume` as separate supervised processes, the service SIGKILLed,
//! the broker stopped 10 s, the consumer SIGKILLed and restarted, MariaDB restarted.

use std::time::{Duration, Instant};

use sqlx::MySqlPool;

use super::{assert_promises_kept, log_dir, reconcile};
use crate::support::{PrivateServer, Remote, Shoppers, Supervised, settings_on, write_config};

#[tokio::test]
async fn every_confirmed_order_survives_service_broker_consumer_and_database_faults() {
    const STOCK: i64 = 1_500;
    const LIMIT: i64 = 2;
    let redis = PrivateServer::start("redis");
    let mysql = PrivateServer::start("mysql");
    let kafka = PrivateServer::start("kafka");
    let mut settings = settings_on(&redis.url(), &mysql.url(), &kafka.url());
    crate::support::fixed_ports(&mut settings);
    // About 80 buys a second are admitted, so the sale lasts through the faults.
    settings.limits.global_per_sec = 80;
    settings.limits.global_burst = 5;
    let mut consumer_settings = settings.clone();
    crate::support::fixed_ports(&mut consumer_settings);
    let (serve_cfg, consume_cfg) = (write_config(&settings), write_config(&consumer_settings));
    let logs = log_dir();
    let (serve_log, consume_log) = (logs.join("serve.log"), logs.join("consume.log"));
    let api = Remote::at(&settings);
    // Supervised, as systemd or Kubernetes would run them: a process that exits on its own
    // (its start met MariaDB mid-restart) is started again a second later.
    let serve = Supervised::new("serve", &serve_cfg, &serve_log);
    api.wait_ready().await;
    let consume = Supervised::new("consume", &consume_cfg, &consume_log);
    Remote::at(&consumer_settings).wait_ready().await;
    let (sale, item) = api.create_live_sale(STOCK, LIMIT).await;
    let shoppers = Shoppers::start(&api.base, sale, item, 64, 1_200);
    shoppers.wait_confirmed(40, Duration::from_secs(60)).await;

    let mut marks = Vec::new();
    marks.push(("service SIGKILL", shoppers.confirmed()));
    serve.kill();
    serve.start();
    api.wait_ready().await;

    marks.push(("broker stopped 10 s", shoppers.confirmed()));
    kafka.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    kafka.restart();

    marks.push((
        "consumer SIGKILL, restarted 1 s later",
        shoppers.confirmed(),
    ));
    consume.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    consume.start();

    marks.push(("MariaDB restarted", shoppers.confirmed()));
    mysql.stop();
    mysql.restart();
    let last_fault = Instant::now();
    let at_last_fault = shoppers.confirmed();

    let (confirmed, answers) = shoppers.finish_at_sell_out(Duration::from_secs(90)).await;
    assert!(
        at_last_fault < STOCK as usize && confirmed.len() > at_last_fault,
        "the last fault must land mid-sale: confirmed at each fault {marks:?}, {} at the end; answers {answers}",
        confirmed.len()
    );

    eprintln!(
        "confirmed at each fault {marks:?}; {at_last_fault} at the last fault, {} at the sell-out {:?} after it",
        confirmed.len(),
        last_fault.elapsed()
    );
    let db = MySqlPool::connect(&mysql.url()).await.unwrap();
    let deadline = last_fault + Duration::from_secs(60);
    loop {
        let units: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM orders WHERE item_id = ?",
        )
        .bind(item)
        .fetch_one(&db)
        .await
        .unwrap_or(0);
        if units >= STOCK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {units} of {STOCK} units persisted 60 s after the last fault (logs in {})",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "every unit persisted {:?} after the last fault",
        last_fault.elapsed()
    );
    assert_promises_kept(&db, item, STOCK, LIMIT, &confirmed).await;
    let (clean, report) = reconcile(&serve_cfg, sale);
    assert!(clean, "reconciliation is clean:\n{report}");
    eprintln!(
        "supervisor restarts: serve {}, consume {}",
        serve.restarts(),
        consume.restarts()
    );
    drop((serve, consume));
    let _ = std::fs::remove_dir_all(logs);
}
