//! The order consumer: Kafka -> MySQL under row locks, idempotent, batched, nothing lost.

use std::time::Duration;

use chrono::Utc;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};
use reqwest::StatusCode;
use seckill::{buy::identify::mint_token, domain::order_reserved::OrderReserved};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    JWT_SECRET, PrivateServer, STACK, eventually, mysql_figures, produce_events, spawn_app,
    spawn_process, spawn_roles, test_settings, unique, write_config,
};

fn events(sale: u64, item: u64, n: usize, user_prefix: &str) -> Vec<OrderReserved> {
    (0..n)
        .map(|i| {
            let user = format!("{user_prefix}{i}");
            OrderReserved::new(
                seckill::domain::order_id::fresh(item, &user),
                sale,
                item,
                &user,
                1,
                1999,
                Utc::now().timestamp_millis(),
            )
        })
        .collect()
}

#[tokio::test]
async fn reservations_become_persisted_orders() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let mut orders = Vec::new();
    for u in 0..4 {
        let (s, body) = app.buy(sale, item, &format!("u{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        orders.push(body["order_id"].as_str().unwrap().to_string());
    }
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await == (4, 4, 6)).then_some(()) }
    })
    .await;
    let token = mint_token(&JWT_SECRET, "u0", 60).unwrap();
    let r = app
        .http
        .get(app.url(&format!("/api/v1/orders/{}", orders[0])))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending_payment", "{body}");
    assert!(body["expires_at"].is_string(), "{body}");
    assert!(body["persisted_at"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn redelivered_events_leave_one_row_each_and_stock_decremented_once() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(100, 1).await;
    let batch = events(sale, item, 30, "r");
    produce_events(app.settings(), &batch).await;
    produce_events(app.settings(), &batch).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 30).then_some(()) }
    })
    .await;
    // Let any second copies arrive, then check nothing changed.
    let dup = app
        .services
        .metrics
        .consumer
        .orders
        .with_label_values(&["duplicate"]);
    eventually(Duration::from_secs(60), || {
        let v = dup.get();
        async move { (v >= 30).then_some(()) }
    })
    .await;
    assert_eq!(mysql_figures(app.db(), item).await, (30, 30, 70));
    app.stop().await;
}

#[tokio::test]
async fn orders_mysql_cannot_honour_are_stored_as_rejected() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(3, 1).await;
    // As if Redis had lost data: one user twice, and more units than the stock.
    let mut batch = events(sale, item, 4, "x");
    batch.push(OrderReserved::new(
        seckill::domain::order_id::fresh(item, "x0"),
        sale,
        item,
        "x0",
        1,
        1999,
        0,
    ));
    produce_events(app.settings(), &batch).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 5).then_some(()) }
    })
    .await;
    let (rows, units, stock) = mysql_figures(app.db(), item).await;
    assert_eq!((rows, units, stock), (5, 3, 0));
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT reject_reason FROM orders WHERE item_id = ? AND status = 'rejected' ORDER BY reject_reason",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(reasons, ["stock_exhausted", "user_limit"]);
    // The buyer sees the refusal and its reason through the orders API.
    let rejected: Uuid = sqlx::query_scalar(
        "SELECT order_id FROM orders WHERE item_id = ? AND reject_reason = 'user_limit'",
    )
    .bind(item)
    .fetch_one(app.db())
    .await
    .unwrap();
    let token = mint_token(&JWT_SECRET, "x0", 600).unwrap();
    let view: Value = app
        .http
        .get(app.url(&format!("/api/v1/orders/{rejected}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "rejected", "{view}");
    assert_eq!(view["reject_reason"], "user_limit", "{view}");
}

#[tokio::test]
async fn an_unparseable_message_goes_to_the_dead_letter_topic_and_consumption_goes_on() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let endpoint = seckill::stores::kafka::KafkaEndpoint::from_bootstrap(&STACK.kafka_brokers);
    let producer = seckill::stores::kafka::producer::OrderProducer::new(
        &endpoint,
        &app.settings().kafka.topic,
        Duration::from_secs(30),
        Duration::from_millis(5),
    )
    .unwrap();
    producer.send("1", b"{not an event").await.unwrap();
    produce_events(app.settings(), &events(sale, item, 2, "ok")).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 2).then_some(()) }
    })
    .await;
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &STACK.kafka_brokers)
        .set("group.id", format!("dlq-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[&app.settings().kafka.dead_letter_topic])
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(60), dlq.recv())
        .await
        .expect("a dead letter")
        .unwrap();
    assert_eq!(msg.payload(), Some(&b"{not an event"[..]));
    let header = msg.headers().expect("headers").get(0);
    assert_eq!(header.key, "seckill-error");
}

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
    let mut child = crate::processes::spawn_process_paused_at("consume", &config, &log, point);
    crate::processes::wait_for_failpoint(&log, point).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let at_kill = mysql_figures(app.db(), item).await.0;
    let mut child = spawn_process("consume", &config);
    let db = app.db().clone();
    eventually(Duration::from_secs(120), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 2_000).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        mysql_figures(app.db(), item).await,
        (2_000, 2_000, 8_000),
        "killed at {point}: every order once, stock decremented once"
    );
    child.kill().unwrap();
    child.wait().unwrap();
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

#[tokio::test]
async fn a_consumer_sent_sigterm_commits_what_it_persisted_and_exits_cleanly() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.consumer.batch_max = 20;
    let app = spawn_roles(settings.clone(), false).await;
    let (sale, item) = app.create_live_sale(10_000, 1).await;
    produce_events(app.settings(), &events(sale, item, 4_000, "t")).await;
    let config = write_config(app.settings());
    let mut child = spawn_process("consume", &config);
    let db = app.db().clone();
    eventually(Duration::from_secs(90), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 > 0).then_some(()) }
    })
    .await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = eventually(Duration::from_secs(60), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    let persisted = mysql_figures(app.db(), item).await.0;
    assert!(persisted < 4_000, "stopped mid-stream ({persisted} rows)");

    // What it persisted is exactly what its group committed: one message per order.
    let reader: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &STACK.kafka_brokers)
        .set("group.id", &settings.kafka.group_id)
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in 0..settings.kafka.partitions as i32 {
        partitions.add_partition(&settings.kafka.topic, p);
    }
    let committed: i64 = reader
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum();
    drop(reader);
    assert_eq!(
        committed, persisted,
        "committed offsets cover exactly the persisted orders"
    );

    // A new member takes over from the commit and finishes the stream, nothing twice.
    let mut child = spawn_process("consume", &config);
    eventually(Duration::from_secs(120), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 4_000).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mysql_figures(app.db(), item).await, (4_000, 4_000, 6_000));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn mariadb_stopped_during_consumption_loses_nothing_and_duplicates_nothing() {
    let mysql = PrivateServer::start("mysql");
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    let db_name = format!("seckill_t_{}", unique());
    let admin_url = format!("mysql://seckill:seckill@127.0.0.1:{}/seckill", mysql.port);
    {
        use sqlx::Connection;
        let mut conn = sqlx::MySqlConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    settings.mysql.url = seckill::config::Secret::new(format!(
        "mysql://seckill:seckill@127.0.0.1:{}/{db_name}",
        mysql.port
    ));
    let app = crate::helpers::spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(1_000, 1).await;
    produce_events(app.settings(), &events(sale, item, 100, "a")).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move { (mysql_figures(&db, item).await.0 == 100).then_some(()) }
    })
    .await;
    mysql.stop();
    produce_events(app.settings(), &events(sale, item, 150, "b")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    mysql.run("start");
    eventually(Duration::from_secs(120), || {
        let db = db.clone();
        async move {
            match sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orders")
                .fetch_one(&db)
                .await
            {
                Ok(250) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(mysql_figures(app.db(), item).await, (250, 250, 750));
    app.stop().await;
}

#[tokio::test]
async fn two_consumers_in_one_group_persist_every_order_once() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.kafka.partitions = 4;
    let app = spawn_roles(settings, false).await;
    // Several items, so keys spread over the partitions.
    let now = Utc::now();
    let (status, sale) = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/sales",
            Some(serde_json::json!({
                "name": "many",
                "starts_at": (now - chrono::Duration::seconds(1)).to_rfc3339(),
                "ends_at": (now + chrono::Duration::minutes(30)).to_rfc3339(),
                "items": (0..8).map(|i| serde_json::json!({
                    "sku": format!("s{i}"), "title": "t", "price_cents": 1, "stock": 1000, "per_user_limit": 1
                })).collect::<Vec<_>>(),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let sale_id = sale["id"].as_u64().unwrap();
    let items: Vec<u64> = sale["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    let all: Vec<OrderReserved> = items
        .iter()
        .flat_map(|item| events(sale_id, *item, 100, "m"))
        .collect();
    let config = write_config(app.settings());
    let mut a = spawn_process("consume", &config);
    let mut b = spawn_process("consume", &config);
    produce_events(app.settings(), &all).await;
    let db = app.db().clone();
    eventually(Duration::from_secs(120), || {
        let db = db.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
                .fetch_one(&db)
                .await
                .unwrap();
            (n == 800).then_some(())
        }
    })
    .await;
    for item in &items {
        assert_eq!(mysql_figures(app.db(), *item).await, (100, 100, 900));
    }
    a.kill().unwrap();
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
}

#[tokio::test]
async fn a_later_batch_sees_the_units_a_user_already_holds_in_mysql() {
    let app = crate::helpers::spawn_roles(test_settings(&STACK.kafka_brokers).await, false).await;
    let (sale, item) = app.create_live_sale(10, 2).await;
    let first = vec![
        OrderReserved::new(Uuid::now_v7(), sale, item, "holder", 2, 1, 0),
        OrderReserved::new(Uuid::now_v7(), sale, item, "other", 1, 1, 0),
    ];
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &first)
        .await
        .unwrap();
    assert_eq!((out.persisted, out.rejected, out.duplicates), (2, 0, 0));
    let second = vec![
        OrderReserved::new(Uuid::now_v7(), sale, item, "holder", 1, 1, 0),
        OrderReserved::new(Uuid::now_v7(), sale, item, "other", 1, 1, 0),
        first[0].clone(),
    ];
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &second)
        .await
        .unwrap();
    assert_eq!((out.persisted, out.rejected, out.duplicates), (1, 1, 1));
    assert_eq!(mysql_figures(app.db(), item).await, (4, 4, 6));
}

#[tokio::test]
async fn user_ids_that_differ_only_in_case_or_accents_are_different_buyers() {
    let app = crate::helpers::spawn_roles(test_settings(&STACK.kafka_brokers).await, false).await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let batch: Vec<OrderReserved> = ["Bob", "bob", "bób", "名前"]
        .iter()
        .map(|u| OrderReserved::new(Uuid::now_v7(), sale, item, u, 1, 1, 0))
        .collect();
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &batch)
        .await
        .unwrap();
    assert_eq!((out.persisted, out.rejected), (4, 0));
    let again = vec![OrderReserved::new(
        Uuid::now_v7(),
        sale,
        item,
        "bob",
        1,
        1,
        0,
    )];
    let out = seckill::stores::mysql::orders::persist_batch(app.db(), &again)
        .await
        .unwrap();
    assert_eq!(out.rejected, 1, "bob already holds his one unit");
}
