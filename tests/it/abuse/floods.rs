//! Floods that cost the attacker nothing and the stores a lot, unless stopped early: cancels and
//! lookups of made-up order ids, and unauthenticated buys that would drain the instance's
//! bucket before real buyers reach it.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use seckill::{buy::identify::mint_token, domain::order_id};
use uuid::Uuid;

use crate::support::{
    JWT_SECRET, PrivateServer, STACK, TestApp, com_select, settings_on, spawn_roles, spawn_with,
};

/// Sends `count` cancels of the ids `id(n)` as `user` from 32 connections; returns the answers
/// by status.
async fn cancel_flood(
    app: &TestApp,
    user: &str,
    count: usize,
    id: impl Fn(usize) -> Uuid,
) -> std::collections::BTreeMap<u16, usize> {
    let token = mint_token(&JWT_SECRET, user, 600).unwrap();
    let ids: Vec<Uuid> = (0..count).map(id).collect();
    let mut answers = std::collections::BTreeMap::new();
    for chunk in ids.chunks(32) {
        let requests = chunk.iter().map(|id| {
            app.http
                .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
                .bearer_auth(&token)
                .send()
        });
        for r in join_all(requests).await {
            *answers.entry(r.unwrap().status().as_u16()).or_insert(0) += 1;
        }
    }
    answers
}

/// The SELECTs a flood cost beyond what the background jobs select in as long while idle.
async fn selects_of<F: Future>(mysql: &str, flood: F) -> (i64, F::Output) {
    let before = com_select(mysql).await;
    let started = Instant::now();
    let out = flood.await;
    let took = started.elapsed();
    let after = com_select(mysql).await;
    tokio::time::sleep(took).await;
    let idle = com_select(mysql).await - after;
    ((after - before) as i64 - idle as i64, out)
}

#[tokio::test]
async fn cancels_of_ids_that_cannot_be_the_buyers_are_answered_from_memory() {
    let mysql = PrivateServer::start("mysql");
    // No buyer bucket: what stops the flood here is the id itself.
    let settings = settings_on(&STACK.redis_url, &mysql.url(), "embedded");
    let app = spawn_with(settings).await;
    app.create_live_sale(10, 1).await;
    let (cost, answers) = selects_of(&mysql.url(), async {
        cancel_flood(&app, "flooder", 9_600, |_| Uuid::now_v7()).await
    })
    .await;
    eprintln!("9,600 cancels of random ids: {answers:?}, {cost} SELECTs beyond idle");
    assert_eq!(answers.get(&404), Some(&9_600), "{answers:?}");
    assert!(
        cost <= 200,
        "9,600 cancels of random ids cost {cost} SELECTs"
    );
}

#[tokio::test]
async fn a_buyers_bucket_throttles_cancels_and_lists_of_their_own_ids() {
    let mysql = PrivateServer::start("mysql");
    let mut settings = settings_on(&STACK.redis_url, &mysql.url(), "embedded");
    settings.limits.per_user_per_sec = 5;
    settings.limits.per_user_burst = 10;
    let app = spawn_with(settings).await;
    let (_, item) = app.create_live_sale(10, 1).await;
    // Ids that pass every check from memory: the buyer's hash, a live item's tag, now.
    let (cost, answers) = selects_of(&mysql.url(), async {
        cancel_flood(&app, "flooder", 9_600, |_| order_id::fresh(item, "flooder")).await
    })
    .await;
    eprintln!(
        "9,600 cancels of the buyer's own made-up ids: {answers:?}, {cost} SELECTs beyond idle"
    );
    assert!(
        answers.get(&429).is_some_and(|n| *n >= 9_000),
        "{answers:?}"
    );
    assert!(cost <= 200, "9,600 cancels cost {cost} SELECTs");
    // Listing shares the bucket.
    let token = mint_token(&JWT_SECRET, "lister", 600).unwrap();
    let lists = join_all((0..40).map(|_| {
        app.http
            .get(app.url("/api/v1/orders"))
            .bearer_auth(&token)
            .send()
    }))
    .await;
    let limited = lists
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(limited >= 20, "{limited} of 40 lists at once were limited");
}

/// Redis commands the server on `port` ran since its counters were reset.
async fn commands_run(port: u16) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn a_reservation_not_yet_in_mysql_is_looked_for_in_its_own_item_only() {
    let redis = PrivateServer::start("redis");
    let mut settings = crate::support::test_settings("embedded").await;
    settings.redis.url = redis.url();
    // No consumer: reservations stay in the ledger, on their way to MySQL.
    let app = spawn_roles(settings, false).await;
    let mut last = (0, 0);
    for _ in 0..20 {
        last = app.create_live_sale(10, 1).await;
    }
    let (sale, item) = last;
    let (status, body) = app.buy(sale, item, "waiting", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order = body["order_id"].as_str().unwrap().to_string();
    let token = mint_token(&JWT_SECRET, "waiting", 600).unwrap();
    let get = || {
        app.http
            .get(app.url(&format!("/api/v1/orders/{order}")))
            .bearer_auth(&token)
            .send()
    };
    // The list of live items is cached; warm it before counting.
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..50 {
        let r = get().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], "reserved", "{body}");
    }
    let commands = commands_run(redis.port).await;
    eprintln!("50 lookups of an unpersisted order among 20 live items: {commands} Redis commands");
    // Its own item: a meta read and an entry read each, and a little besides (the relay, the
    // app's own jobs). Every live item would be 20 times that.
    assert!(
        commands <= 50 * 6,
        "{commands} Redis commands for 50 lookups"
    );
}

#[tokio::test]
async fn an_unauthenticated_flood_does_not_drain_the_bucket_real_buyers_need() {
    let mut settings = crate::support::test_settings(&STACK.kafka_brokers).await;
    settings.limits.global_per_sec = 100;
    settings.limits.global_burst = 20;
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(100, 1).await;
    let stop = Instant::now() + Duration::from_secs(8);
    let flooders = (0..16).map(|w| {
        let (http, url) = (
            app.http.clone(),
            app.url(&format!(
                "/api/v1/sales/{sale}/items/{}/orders",
                900_000 + w
            )),
        );
        tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < stop {
                let _ = http.post(&url).send().await;
                sent += 1;
            }
            sent
        })
    });
    let flooders: Vec<_> = flooders.collect();
    // Forty real buyers, one every 150 ms, during the flood.
    let mut accepted = 0;
    for n in 0..40 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, body) = app.buy(sale, item, &format!("real-{n}"), 1, None).await;
        if status == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            eprintln!("real buyer {n}: {status} {body}");
        }
    }
    let mut flood = 0;
    for f in flooders {
        flood += f.await.unwrap();
    }
    eprintln!("{flood} unauthenticated buys in 8 s; {accepted} of 40 real buyers got 202");
    assert!(
        flood > 1_000,
        "the flood ran at full speed: {flood} requests"
    );
    assert_eq!(accepted, 40, "real buyers turned away during the flood");
}
