//! Two databases (a second environment, a restored backup) sharing one Redis and key prefix, so
//! that both give their first sale the ids 1 and 1. From script v6 on an item's keys carry its
//! sale's uid, so both sales sell in full. Sales pinned to v5 share key names: there the other
//! sale's state is refused by create, prewarm and buys, reported by reconciliation, never mixed.

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::json;

use std::time::Duration;

use crate::support::{
    STACK, TestApp, failing_checks, live_sale_body, mysql_figures, spawn_with, test_settings,
    wait_rows_exactly,
};

/// Two apps, each with a database of its own, on one Redis under one key prefix; sales pinned
/// to `version`.
async fn two_databases(version: &str, prewarm_lead_secs: Option<u64>) -> (TestApp, TestApp) {
    let mut first = test_settings(&STACK.kafka_brokers).await;
    let mut second = test_settings(&STACK.kafka_brokers).await;
    second.redis.key_prefix = first.redis.key_prefix.clone();
    for s in [&mut first, &mut second] {
        s.sale.script_version = version.into();
    }
    if let Some(lead) = prewarm_lead_secs {
        second.sale.prewarm_lead_secs = lead;
    }
    (spawn_with(first).await, spawn_with(second).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_sharing_one_redis_each_sell_their_sale_1_in_full() {
    const STOCK: usize = 40;
    let (a, b) = two_databases(seckill::domain::script_version::CURRENT, None).await;
    let (mut sales, mut pages) = (Vec::new(), Vec::new());
    for (app, name) in [(&a, "A's sale"), (&b, "B's sale")] {
        let mut body = live_sale_body(STOCK as i64, 1);
        body["name"] = json!(name);
        let (status, sale) = app.create_sale(body).await;
        assert_eq!(status, StatusCode::CREATED, "{sale}");
        let (id, item) = (sale["id"].as_u64(), sale["items"][0]["id"].as_u64());
        sales.push((id.unwrap(), item.unwrap()));
    }
    // Each database's page of sale 1, A's first, through the page cache both share a Redis
    // with.
    for (app, (id, _)) in [&a, &b].into_iter().zip(&sales) {
        let page = app.get(&format!("/api/v1/sales/{id}")).await;
        pages.push(page.json::<serde_json::Value>().await.unwrap()["name"].clone());
    }
    let [(sale_a, item_a), (sale_b, item_b)] = sales[..] else {
        unreachable!()
    };
    assert_eq!((sale_a, item_a), (sale_b, item_b), "the same ids");
    assert_eq!(pages, [json!("A's sale"), json!("B's sale")]);
    // A's second sale has no namesake in B: a B instance starting (it rebuilds its Bloom
    // filter of sale ids from B's database) leaves A's page of it alone.
    let (status, second) = a.create_sale(live_sale_body(1, 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let _b_restarted = spawn_with((*b.services.settings).clone()).await;
    let page = a.get(&format!("/api/v1/sales/{}", second["id"])).await;
    assert_eq!(page.status(), StatusCode::OK, "A's second sale's page");
    let (keys_a, keys_b) = (
        a.item_keys(sale_a, item_a).await,
        b.item_keys(sale_b, item_b).await,
    );
    assert_ne!(keys_a.stock, keys_b.stock, "each sale's keys carry its uid");

    // Both crowds at once, the same user names on both sides, one more buyer than units.
    tokio::join!(
        sell_out(&a, sale_a, item_a, STOCK, "A"),
        sell_out(&b, sale_b, item_b, STOCK, "B")
    );

    for (app, side) in [(&a, "A"), (&b, "B")] {
        wait_rows_exactly(app.db(), item_a, STOCK as i64, Duration::from_secs(90)).await;
        let (rows, units, _) = mysql_figures(app.db(), item_a).await;
        assert_eq!((rows, units), (STOCK as i64, STOCK as i64), "{side}");
        let report = app
            .services
            .reconciler
            .run_once(sale_a, false)
            .await
            .unwrap();
        assert!(report.ok, "{side}: {}", report.to_table());
    }
    let mut conn = a.redis().get();
    for keys in [&keys_a, &keys_b] {
        let left: i64 = conn.get(&keys.stock).await.unwrap();
        assert_eq!(left, 0, "{}", keys.stock);
    }
}

/// `stock + 1` buyers (`u0`, `u1`, …) at once: `stock` are accepted, the last is told sold out.
async fn sell_out(app: &TestApp, sale: u64, item: u64, stock: usize, side: &str) {
    let buys = (0..=stock).map(|n| async move {
        let user = format!("u{n}");
        app.buy(sale, item, &user, 1, None).await
    });
    let answers = futures::future::join_all(buys).await;
    let accepted = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::ACCEPTED)
        .map(|(_, body)| body["code"].clone())
        .collect();
    assert_eq!(accepted, stock, "{side}: every unit sold: {refused:?}");
    assert_eq!(refused, [json!("sold_out")], "{side}: then sold out");
}

#[tokio::test]
async fn a_v5_create_that_would_meet_another_sales_state_answers_409_and_writes_nothing() {
    let (a, b) = two_databases("v5", None).await;
    let (sale_a, item_a) = a.create_live_sale(10, 1).await;

    let (status, body) = b.create_sale(live_sale_body(500, 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "foreign_state", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("item {item_a}")),
        "names the item: {body}"
    );
    let (status, listed) = b.admin_get("/admin/v1/sales").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["total"], 0,
        "nothing written in B's database: {listed}"
    );
    let keys = a.item_keys(sale_a, item_a).await;
    let stock: i64 = a.redis().get().get(&keys.stock).await.unwrap();
    assert_eq!(stock, 10, "A's state untouched");

    // B's next sale takes the next ids, which meet nothing, and sells.
    let (sale_b, item_b) = b.create_live_sale(500, 1).await;
    assert_ne!(sale_b, sale_a);
    let (s, body) = b.buy(sale_b, item_b, "bob", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let (s, _) = a.buy(sale_a, item_a, "alice", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_v5_sale_refuses_the_redis_state_of_another_sale_with_the_same_id() {
    // As above, but B's sale starts after its prewarm lead, so its create warms nothing and
    // checks nothing: the clash shows at the prewarm and the buys.
    let (a, b) = two_databases("v5", Some(1)).await;
    let (sale_a, item_a) = a.create_live_sale(10, 1).await;
    let starts_in = chrono::Duration::seconds(3);
    let mut later = live_sale_body(500, 1);
    later["starts_at"] = json!((chrono::Utc::now() + starts_in).to_rfc3339());
    let (status, body) = b.create_sale(later).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sale_b, item_b) = (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    );
    assert_eq!((sale_a, item_a), (sale_b, item_b), "the same ids");
    assert_ne!(body["status"], "warmed", "{body}");
    let (status, body) = b.prewarm(sale_b).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "foreign_state");

    // Once B's sale has started, its buyers are refused and nothing of A's changes; A sells as
    // before.
    tokio::time::sleep(starts_in.to_std().unwrap()).await;
    let (s, body) = b.buy(sale_b, item_b, "bob", 1, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "foreign_state");
    let keys = a.item_keys(sale_a, item_a).await;
    let stock: i64 = a.redis().get().get(&keys.stock).await.unwrap();
    assert_eq!(stock, 10);
    let (s, _) = a.buy(sale_a, item_a, "alice", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // B's reconciliation names the problem instead of comparing A's data with B's.
    let report = b.services.reconciler.run_once(sale_b, false).await.unwrap();
    let failing = failing_checks(&report);
    assert_eq!(failing, ["redis_state_identity"], "{}", report.to_table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_sharing_one_redis_each_keep_their_own_waiting_room() {
    use crate::queue::{buy_admitted, join, poll_until, queued_sale};
    let (a, b) = two_databases(seckill::domain::script_version::CURRENT, None).await;
    let policy = json!({"admit_per_sec": 50});
    let (sale_a, item_a) = queued_sale(&a, 5, chrono::Utc::now(), policy.clone()).await;
    let (sale_b, item_b) = queued_sale(&b, 5, chrono::Utc::now(), policy).await;
    assert_eq!((sale_a, item_a), (sale_b, item_b), "the same ids");

    // A's crowd joins first; B's first buyer is still first in B's room, and each is admitted
    // by its own usher and buys.
    for i in 0..3 {
        let joined = join(&a, sale_a, &format!("a-{i}")).await;
        assert_eq!(joined["position"], i, "{joined}");
    }
    let joined = join(&b, sale_b, "b-0").await;
    assert_eq!(joined["position"], 0, "B's room is its own: {joined}");
    for (app, sale, item, user, ticket) in [
        (&b, sale_b, item_b, "b-0", joined["ticket"].clone()),
        (
            &a,
            sale_a,
            item_a,
            "a-3",
            join(&a, sale_a, "a-3").await["ticket"].clone(),
        ),
    ] {
        let ticket = ticket.as_str().unwrap().to_string();
        let admitted = poll_until(app, sale, &ticket, Duration::from_secs(20), |b| {
            b["state"] == "admitted"
        })
        .await;
        let token = admitted["admission_token"].as_str().unwrap();
        let (status, order) = buy_admitted(app, sale, item, user, Some(token)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{user}: {order}");
    }
}
