//! Every fault in one rate-limited sale, tried from outside as an operator would see it:
//! `seckill serve` and `seckill consume` as separate supervised processes, the service SIGKILLed,
//! the broker stopped 10 s, the consumer SIGKILLed and restarted, MariaDB restarted.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use sqlx::MySqlPool;

use super::{LIMIT, STOCK, assert_promises_kept, log_dir, reconcile};
use crate::support::{
    PrivateServer, Remote, Shoppers, Supervised, order_units, settings_on, write_config,
};

/// The stores a sale runs on, each a private server of its own, so each can be faulted.
struct Stores {
    redis: PrivateServer,
    mysql: PrivateServer,
    kafka: PrivateServer,
}

/// `seckill serve` and `seckill consume`, each under a supervisor.
struct Processes {
    api: Remote,
    serve: Supervised,
    consume: Supervised,
}

/// One fault after another while the shoppers buy: the service SIGKILLed, the broker stopped
/// 10 s, the consumer SIGKILLed and restarted 1 s later, MariaDB restarted. Returns what was
/// confirmed at each fault.
async fn one_fault_after_another(
    stores: &Stores,
    processes: &Processes,
    shoppers: &Shoppers,
) -> Vec<(&'static str, usize)> {
    let Processes {
        api,
        serve,
        consume,
    } = processes;
    let mut marks = Vec::new();
    marks.push(("service SIGKILL", shoppers.confirmed()));
    serve.kill();
    serve.start();
    api.wait_ready().await;

    marks.push(("broker stopped 10 s", shoppers.confirmed()));
    stores.kafka.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    stores.kafka.restart();

    marks.push((
        "consumer SIGKILL, restarted 1 s later",
        shoppers.confirmed(),
    ));
    consume.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    consume.start();

    marks.push(("MariaDB restarted", shoppers.confirmed()));
    stores.mysql.stop();
    stores.mysql.restart();
    marks
}

/// Waits until MySQL holds every unit of `item`, 60 s after the last fault at most.
async fn every_unit_persisted(db: &MySqlPool, item: u64, last_fault: Instant, logs: &Path) {
    let deadline = last_fault + Duration::from_secs(60);
    loop {
        let units = order_units(db, item).await.unwrap_or(0);
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
}

#[tokio::test]
async fn every_confirmed_order_survives_service_broker_consumer_and_database_faults() {
    let stores = Stores {
        redis: PrivateServer::start("redis"),
        mysql: PrivateServer::start("mysql"),
        kafka: PrivateServer::start("kafka"),
    };
    let mut settings = settings_on(
        &stores.redis.url(),
        &stores.mysql.url(),
        &stores.kafka.url(),
    );
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
    let processes = Processes {
        api,
        serve,
        consume,
    };

    let marks = one_fault_after_another(&stores, &processes, &shoppers).await;
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
    let db = MySqlPool::connect(&stores.mysql.url()).await.unwrap();
    every_unit_persisted(&db, item, last_fault, &logs).await;
    assert_promises_kept(&db, item, STOCK, LIMIT, &confirmed).await;
    let (clean, report) = reconcile(&serve_cfg, sale);
    assert!(clean, "reconciliation is clean:\n{report}");
    let Processes { serve, consume, .. } = processes;
    eprintln!(
        "supervisor restarts: serve {}, consume {}",
        serve.restarts(),
        consume.restarts()
    );
    drop((serve, consume));
    let _ = std::fs::remove_dir_all(logs);
}
