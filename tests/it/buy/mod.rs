//! The buy path: gates, atomic deduction, answers, order lookups. The sale window is in
//! [`window`].

mod window;

use std::collections::{HashMap, HashSet};

use redis::AsyncCommands;
use reqwest::StatusCode;
use seckill::buy::identify::mint_token;
use serde_json::{Value, json};

use tokio::task::JoinHandle;

use crate::support::{
    JWT_SECRET, STACK, TestApp, app_with_user_bucket, gateway_app, send, spawn_app, spawn_with,
    test_settings,
};

/// A user's answers, in the order the requests were sent.
type Answers = Vec<(StatusCode, Value)>;

/// Three answers for each of `users` distinct users, sent at once: two buys with the same
/// idempotency key, then one without.
fn three_tries_each(
    app: &TestApp,
    sale: u64,
    item: u64,
    users: u64,
) -> Vec<JoinHandle<(u64, Answers)>> {
    let mut tasks = Vec::new();
    for u in 0..users {
        let http = app.http.clone();
        let url = app.url(&format!("/api/v1/sales/{sale}/items/{item}/orders"));
        tasks.push(tokio::spawn(async move {
            let token = mint_token(&JWT_SECRET, &format!("user-{u}"), 600).unwrap();
            let mut answers = Vec::new();
            for attempt in 0..3 {
                let mut req = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"quantity": 1}));
                if attempt < 2 {
                    req = req.header("Idempotency-Key", format!("key-{u}"));
                }
                let r = req.send().await.unwrap();
                let status = r.status();
                let body: Value = r.json().await.unwrap();
                answers.push((status, body));
            }
            (u, answers)
        }));
    }
    tasks
}

/// Redis holds exactly the winners' orders: the stock is gone, one ledger entry per winner,
/// nobody above the limit of one.
async fn the_ledger_holds_the_winners(
    app: &TestApp,
    sale: u64,
    item: u64,
    stock: i64,
    winners: &HashMap<u64, String>,
) {
    let keys = app.item_keys(sale, item).await;
    let mut conn = app.redis().get();
    let remaining: i64 = conn.get(&keys.stock).await.unwrap();
    let state =
        crate::support::redis_ledger(app.redis(), app.item_keys(sale, item).await, sale, item)
            .await;
    assert_eq!(remaining, 0);
    assert_eq!(state.events.len(), stock as usize);
    assert!(
        state.buyers.values().all(|units| *units == 1),
        "nobody above the limit"
    );
    for id in winners.values() {
        let id: uuid::Uuid = id.parse().unwrap();
        assert!(
            state.events.contains_key(&id),
            "order {id} is in the ledger"
        );
    }
}

#[tokio::test]
async fn a_stampede_sells_exactly_the_stock_and_retries_get_their_first_answer() {
    let app = spawn_app().await;
    let stock = 40;
    let (sale, item) = app.create_live_sale(stock, 1).await;
    // 300 distinct users, each trying twice with the same idempotency key and once without.
    let tasks = three_tries_each(&app, sale, item, 300);
    let mut winners = HashMap::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        let (u, answers) = t.await.unwrap();
        let (s0, b0) = &answers[0];
        let (s1, b1) = &answers[1];
        let (s2, b2) = &answers[2];
        if *s0 == StatusCode::ACCEPTED {
            // The retry with the same key returns the same order.
            assert_eq!(*s1, StatusCode::ACCEPTED, "{b1}");
            assert_eq!(b1["order_id"], b0["order_id"]);
            // A new attempt without the key is refused: the per-user limit, or the sold-out
            // flag once the item is gone.
            assert_eq!(*s2, StatusCode::CONFLICT, "{b2}");
            assert!(
                b2["code"] == "limit_exceeded" || b2["code"] == "sold_out",
                "{b2}"
            );
            winners.insert(u, b0["order_id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(*s0, StatusCode::CONFLICT, "{b0}");
        }
        for (_, b) in &answers {
            if let Some(c) = b["code"].as_str() {
                *codes.entry(c.to_string()).or_default() += 1;
            }
        }
    }
    assert_eq!(
        winners.len(),
        stock as usize,
        "exactly the stock is sold: {codes:?}"
    );
    let distinct: HashSet<_> = winners.values().collect();
    assert_eq!(
        distinct.len(),
        winners.len(),
        "every winner has their own order"
    );
    the_ledger_holds_the_winners(&app, sale, item, stock, &winners).await;
}

/// 401: no token, a forged token.
async fn unauthenticated_buys_get_401(app: &TestApp, url: &str) {
    let r = send(app.http.post(url)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    let forged = mint_token("not-the-secret-at-all", "alice", 60).unwrap();
    let r = send(app.http.post(url).bearer_auth(forged)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// 422: bad bodies and headers, each naming its field.
async fn bad_bodies_and_headers_get_422(app: &TestApp, url: &str) {
    let token = mint_token(&JWT_SECRET, "alice", 60).unwrap();
    for (body, field) in [
        (json!({"quantity": 0}), "quantity"),
        (json!({"quantity": "two"}), "quantity"),
        (json!({"quantity": 2}), "quantity"),
        (json!({"qty": 1}), "qty"),
    ] {
        let r = send(app.http.post(url).bearer_auth(&token).json(&body)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["field"], field, "{err}");
    }
    let r = send(
        app.http
            .post(url)
            .bearer_auth(&token)
            .header("Idempotency-Key", "has spaces"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(app.http.post(url).bearer_auth(&token).body("{oops")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_json");
}

/// 202, then 409 limit_exceeded, then 409 sold_out; the local flag then answers the next loser
/// without Redis.
async fn a_limit_then_the_sell_out_get_409(app: &TestApp, sale: u64, item: u64) {
    let (s, ok) = app.buy(sale, item, "alice", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{ok}");
    assert_eq!(ok["status"], "reserved");
    let (s, err) = app.buy(sale, item, "alice", 1, None).await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("limit_exceeded"))
    );
    let (s, _) = app.buy(sale, item, "bob", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, err) = app.buy(sale, item, "carol", 1, None).await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("sold_out"))
    );
    let flagged = app
        .services
        .metrics
        .buy
        .gate_rejections
        .with_label_values(&["sold_out_flag"])
        .get();
    let (s, _) = app.buy(sale, item, "dave", 1, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        app.services
            .metrics
            .buy
            .gate_rejections
            .with_label_values(&["sold_out_flag"])
            .get(),
        flagged + 1
    );
}

#[tokio::test]
async fn each_refusal_has_its_status_and_code() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(2, 1).await;
    let url = app.url(&format!("/api/v1/sales/{sale}/items/{item}/orders"));
    unauthenticated_buys_get_401(&app, &url).await;
    bad_bodies_and_headers_get_422(&app, &url).await;

    // 404: unknown item, or an item of another sale.
    let (s, err) = app.buy(sale, 999_999, "alice", 1, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{err}");
    let (s, _) = app.buy(sale + 1, item, "alice", 1, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Nothing was reserved by any of the above.
    let mut conn = app.redis().get();
    let remaining: i64 = conn
        .get(app.item_keys(sale, item).await.stock)
        .await
        .unwrap();
    assert_eq!(remaining, 2);
    a_limit_then_the_sell_out_get_409(&app, sale, item).await;
}

#[tokio::test]
async fn a_user_bucket_answers_429_with_retry_after() {
    let app = app_with_user_bucket(1, 2).await;
    let (sale, item) = app.create_live_sale(100, 10).await;
    let token = mint_token(&JWT_SECRET, "eager", 60).unwrap();
    let url = app.buy_url(sale, item);
    let mut limited = None;
    for _ in 0..4 {
        let r = send(app.http.post(&url).bearer_auth(&token)).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the third request within a second is limited");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
    // Another user is unaffected.
    let (s, _) = app.buy(sale, item, "patient", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_per_ip_bucket_when_switched_on_limits_an_address_across_users() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.limits.per_ip = seckill::config::PerIpMode::On;
    settings.limits.per_ip_per_sec = 1;
    settings.limits.per_ip_burst = 3;
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(100, 10).await;
    // Every test request comes from 127.0.0.1: distinct users share its bucket.
    // Sent at once, so a slow machine cannot stretch them over several refills.
    let users: Vec<String> = (0..6).map(|i| format!("ip-user-{i}")).collect();
    let answers =
        futures::future::join_all(users.iter().map(|u| app.buy(sale, item, u, 1, None))).await;
    let mut statuses = Vec::new();
    for (status, body) in answers {
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["code"], "rate_limited");
        }
        statuses.push(status);
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    assert!(
        (3..=4).contains(&accepted),
        "a burst of 3 (plus at most one refill) from one address: {statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    let text = app.metrics_text().await;
    assert!(
        text.lines()
            .any(|l| l.starts_with(r#"seckill_gate_rejections_total{gate="ip"}"#)),
        "rejections counted under the ip gate"
    );
}

#[tokio::test]
async fn buyers_see_their_own_orders_only() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let (_, ok) = app.buy(sale, item, "alice", 1, None).await;
    let order = ok["order_id"].as_str().unwrap();
    let get = |user: &str| {
        let token = mint_token(&JWT_SECRET, user, 60).unwrap();
        app.http
            .get(app.url(&format!("/api/v1/orders/{order}")))
            .bearer_auth(token)
            .send()
    };
    let r = get("alice").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "reserved");
    assert_eq!(body["item_id"], item);
    assert_eq!(body["quantity"], 1);
    let r = get("mallory").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.http.get(app.url("/api/v1/orders/not-a-uuid"));
    let r = send(r.bearer_auth(mint_token(&JWT_SECRET, "alice", 60).unwrap())).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn behind_a_gateway_the_trusted_header_names_the_buyer() {
    let app = gateway_app("127.0.0.1").await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let as_gw_user = || app.buy_request(sale, item).header("X-User-Id", "gw-user");
    let r = send(as_gw_user()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = send(as_gw_user()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "the same user, limit 1");
    let r = send(app.buy_request(sale, item)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
