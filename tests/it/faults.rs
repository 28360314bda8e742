//! The promise under faults, tried from outside as an operator would see it: `seckill serve`
//! and `seckill consume` as separate processes, a rate-limited stampede whose client records
//! every order id it was told is reserved, processes SIGKILLed while the sale runs, and
//! afterwards the stores checked in straight SQL.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use seckill::config::Settings;
use sqlx::MySqlPool;
use uuid::Uuid;

use crate::{
    helpers::{
        PrivateServer, Remote, STACK, eventually, settings_on, spawn_process_logged, spawn_roles,
        test_settings, unique, write_config,
    },
    processes::Supervised,
    shoppers::Shoppers,
};

/// Session timeout of the consumer group (see `consumer`): the yardstick for resuming.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A folder for one test's process logs, kept when the test fails (its path is in the
/// assertion messages).
fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seckill-faults-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn persisted_rows(db: &MySqlPool, item: u64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
        .bind(item)
        .fetch_one(db)
        .await
        .unwrap_or(-1)
}

fn kill(child: &mut std::process::Child) {
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

/// The restarted consumer as its metrics show it: partitions held and rejoins so far.
async fn consumer_figures(http: &reqwest::Client, admin: &str) -> Option<(i64, i64)> {
    let text = http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
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
    let rows: Vec<(Uuid,)> = sqlx::query_as("SELECT order_id FROM orders WHERE item_id = ?")
        .bind(item)
        .fetch_all(db)
        .await
        .unwrap_or_default();
    let have: HashSet<String> = rows.into_iter().map(|(id,)| id.to_string()).collect();
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
    crate::processes::fixed_ports(&mut consumer_settings);
    let config = write_config(&consumer_settings);
    // A stand-alone consumer serves its probes and metrics on its HTTP address.
    let admin = format!("http://{}", consumer_settings.http.addr);
    let logs = log_dir();
    let log = logs.join("consume.log");
    let mut consumer = spawn_process_logged("consume", &config, &log);
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (persisted_rows(&db, item).await > 100).then_some(()) }
    })
    .await;

    // Killed while orders keep coming, and started again a second later, as a supervisor does:
    // the dead member still counts in the group when the new one joins.
    kill(&mut consumer);
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
    kill(&mut consumer);
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

/// Every confirmed order persisted exactly once, nothing oversold, nobody above the limit:
/// read in straight SQL.
pub(crate) async fn assert_promises_kept(
    db: &MySqlPool,
    item: u64,
    stock: i64,
    limit: i64,
    confirmed: &HashSet<String>,
) {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT order_id, status FROM orders WHERE item_id = ?")
            .bind(item)
            .fetch_all(db)
            .await
            .unwrap();
    let by_id: HashMap<String, String> = rows
        .iter()
        .map(|(id, status)| (id.to_string(), status.clone()))
        .collect();
    let missing: Vec<&String> = confirmed
        .iter()
        .filter(|id| by_id.get(*id).map(String::as_str) != Some("pending_payment"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} confirmed orders are not persisted, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let (units, rejected): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status IN ('pending_payment', 'paid') THEN quantity END), 0) AS SIGNED), \
         CAST(COUNT(CASE WHEN status = 'rejected' THEN 1 END) AS SIGNED) \
         FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(units, stock, "exactly the stock is sold, never more");
    assert_eq!(rejected, 0, "MySQL rejected nothing Redis confirmed");
    let over: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = ? AND status IN ('pending_payment', 'paid') \
         GROUP BY user_id HAVING SUM(quantity) > ?) o",
    )
    .bind(item)
    .bind(limit)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(over, 0, "nobody holds more than the limit of {limit}");
    let left: i64 = sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
        .bind(item)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(left, 0, "MySQL's stock is used up exactly");
}

/// Runs `seckill reconcile --sale` as an operator would; returns its exit status and report.
pub fn reconcile(config: &Path, sale: u64) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"))
        .args(["reconcile", "--sale", &sale.to_string(), "--config"])
        .arg(config)
        .env_remove("SECKILL_REDIS_URL")
        .env_remove("SECKILL_MYSQL_URL")
        .env_remove("SECKILL_KAFKA_BROKERS")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn every_confirmed_order_survives_service_broker_consumer_and_database_faults() {
    const STOCK: i64 = 1_500;
    const LIMIT: i64 = 2;
    let redis = PrivateServer::start("redis");
    let mysql = PrivateServer::start("mysql");
    let kafka = PrivateServer::start("kafka");
    let mut settings = settings_on(&redis.url(), &mysql.url(), &kafka.url());
    crate::processes::fixed_ports(&mut settings);
    // About 80 buys a second are admitted, so the sale lasts through the faults.
    settings.limits.global_per_sec = 80;
    settings.limits.global_burst = 5;
    let mut consumer_settings = settings.clone();
    crate::processes::fixed_ports(&mut consumer_settings);
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
