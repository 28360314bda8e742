//! Production hardening against abuse: the admin API off the buyers' port, unknown ids answered
//! from memory, headers believed only from trusted proxies, idempotency keys that skip nothing
//! unless they exist, and request ids on every answer.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use seckill::buy::identify::mint_token;
use serde_json::{Value, json};

use crate::support::{
    JWT_SECRET, PrivateServer, STACK, TestApp, com_select, gateway_app, send, settings_on,
    spawn_app, spawn_with, test_settings,
};

#[tokio::test]
async fn the_admin_api_and_metrics_are_only_on_the_admin_listener() {
    let app = spawn_app().await;
    for path in ["/admin/v1/sales", "/metrics"] {
        let public = send(
            app.http
                .get(app.url(path))
                .bearer_auth(&*crate::support::ADMIN_TOKEN),
        )
        .await;
        assert_eq!(
            public.status(),
            StatusCode::NOT_FOUND,
            "{path} on the buyers' port"
        );
        let admin = send(
            app.http
                .get(app.admin_url(path))
                .bearer_auth(&*crate::support::ADMIN_TOKEN),
        )
        .await;
        assert_eq!(admin.status(), StatusCode::OK, "{path} on the admin port");
    }
    // Buyers' routes are not on the admin port either.
    let r = app.get_admin("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK, "probes answer on both");
    let r = send(
        app.http
            .post(app.admin_url("/api/v1/sales/1/items/1/orders")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The default admin address is loopback.
    assert!(
        seckill::config::Settings::default()
            .admin_addr
            .ip()
            .is_loopback()
    );
}

/// 3,000 requests naming items and orders that do not exist: unauthenticated buys, buys with a
/// valid token, order lookups with and without one.
async fn flood(app: &TestApp, sale: u64) {
    let token = mint_token(&JWT_SECRET, "flooder", 600).unwrap();
    for round in 0..60u64 {
        let requests = (0..50u64).map(|i| {
            let n = round * 50 + i;
            let random_item = 1_000_000 + rand_u64(n);
            // What each request must get: the item or order is unknown, so a valid token gets
            // 404; without one, a buy is answered 404 from memory too (the item is looked up
            // before the token), and an order lookup 401.
            let (req, expected) = match n % 4 {
                0 => (
                    app.http
                        .post(app.url(&format!("/api/v1/sales/{sale}/items/{random_item}/orders"))),
                    StatusCode::NOT_FOUND,
                ),
                1 => (
                    app.http
                        .post(app.url(&format!("/api/v1/sales/{sale}/items/{random_item}/orders")))
                        .bearer_auth(&token)
                        .json(&json!({"quantity": 1})),
                    StatusCode::NOT_FOUND,
                ),
                2 => (
                    app.http
                        .get(app.url(&format!("/api/v1/orders/{}", uuid::Uuid::now_v7()))),
                    StatusCode::UNAUTHORIZED,
                ),
                _ => (
                    app.http
                        .get(app.url(&format!("/api/v1/orders/{}", uuid::Uuid::new_v4())))
                        .bearer_auth(&token),
                    StatusCode::NOT_FOUND,
                ),
            };
            async move { (n % 4, req.send().await.unwrap().status(), expected) }
        });
        for (kind, status, expected) in join_all(requests).await {
            assert_eq!(status, expected, "request kind {kind}");
        }
    }
}

fn rand_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20
}

#[tokio::test]
async fn a_flood_of_unknown_ids_leaves_mysql_selects_flat() {
    // A MariaDB of its own: Com_select counts this app's queries only.
    let mysql = PrivateServer::start("mysql");
    let mut settings = settings_on(&STACK.redis_url, &mysql.url(), "embedded");
    settings.limits.per_user_per_sec = 0;
    let app = spawn_with(settings).await;
    let (sale, item) = app.create_live_sale(10, 1).await;
    let (status, _) = app.buy(sale, item, "real-buyer", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // What the background jobs select while nothing is asked, over the flood's duration.
    let idle_from = com_select(&mysql.url()).await;
    let started = std::time::Instant::now();
    flood(&app, sale).await;
    let flood_secs = started.elapsed();
    let after_flood = com_select(&mysql.url()).await;
    tokio::time::sleep(flood_secs).await;
    let after_idle = com_select(&mysql.url()).await;
    let during_flood = after_flood - idle_from;
    let while_idle = after_idle - after_flood;
    // Before unknown ids were answered from memory, each one was a SELECT: 3,000 or more.
    assert!(
        during_flood <= while_idle + 60,
        "3,000 requests for unknown ids cost {during_flood} SELECTs (idle: {while_idle} in {flood_secs:?})"
    );
    // Real buyers still buy.
    let (status, _) = app.buy(sale, item, "second-buyer", 1, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// An app with per-IP buckets of one request a second, believing `X-Forwarded-For` from
/// `trusted` only.
async fn per_ip_app(trusted: &str) -> TestApp {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.trusted_proxies = trusted.to_string();
    settings.limits.per_ip = seckill::config::PerIpMode::On;
    settings.limits.per_ip_per_sec = 1;
    settings.limits.per_ip_burst = 1;
    spawn_with(settings).await
}

/// A buy by `user` of `item`, sent through a proxy that names `client` in `X-Forwarded-For`.
async fn buy_from(app: &TestApp, sale: u64, item: u64, client: &str, user: &str) -> StatusCode {
    let token = mint_token(&JWT_SECRET, user, 600).unwrap();
    send(
        app.buy_request(sale, item)
            .bearer_auth(token)
            .header("X-Forwarded-For", client)
            .json(&json!({"quantity": 1})),
    )
    .await
    .status()
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    // X-User-Id from a peer outside the trusted networks is refused.
    let app = gateway_app("10.0.0.0/8").await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let r = send(app.buy_request(sale, item).header("X-User-Id", "impostor")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("trusted proxy"),
        "{body}"
    );

    // Per-IP limits: behind a trusted proxy each X-Forwarded-For client has its own bucket...
    let app = per_ip_app("127.0.0.1").await;
    let (sale, item) = app.create_live_sale(50, 5).await;
    assert_eq!(
        buy_from(&app, sale, item, "203.0.113.7", "u1").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        buy_from(&app, sale, item, "203.0.113.7", "u2").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the same client behind the proxy"
    );
    assert_eq!(
        buy_from(&app, sale, item, "198.51.100.9, 203.0.113.8", "u3").await,
        StatusCode::ACCEPTED,
        "another client (the address the proxy saw is the last one)"
    );
    // ...while from an untrusted peer the header is ignored: every request is the peer's.
    let app = per_ip_app("").await;
    let (sale2, item2) = app.create_live_sale(50, 5).await;
    let mut statuses = Vec::new();
    for client in ["203.0.113.20", "203.0.113.21"] {
        statuses.push(buy_from(&app, sale2, item2, client, "u4").await);
    }
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::TOO_MANY_REQUESTS]
    );
}

/// Deduct script calls this app made, from its own metrics.
async fn deduct_calls(app: &TestApp) -> f64 {
    let text = app.metrics_text().await;
    text.lines()
        .filter(|l| l.starts_with("seckill_script_duration_seconds_count") && l.contains("deduct"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn after_a_sell_out_made_up_idempotency_keys_do_not_reach_the_script() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(1, 1).await;
    let (status, won) = app.buy(sale, item, "winner", 1, Some("winner-key")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app.buy(sale, item, "late", 1, None).await;
    assert_eq!(body["code"], "sold_out", "{status} {body}");
    let before = deduct_calls(&app).await;
    for i in 0..50 {
        let (status, body) = app
            .buy(
                sale,
                item,
                &format!("guesser-{i}"),
                1,
                Some(&format!("made-up-{i}")),
            )
            .await;
        assert_eq!(body["code"], "sold_out", "{status} {body}");
    }
    assert_eq!(
        deduct_calls(&app).await,
        before,
        "made-up keys ran the script"
    );
    // The winner's retry with its own key still gets its order.
    let (status, again) = app.buy(sale, item, "winner", 1, Some("winner-key")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["order_id"], won["order_id"]);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_minted_or_propagated() {
    let app = spawn_app().await;
    let sent = |method: Method, path: &str, id: Option<&str>| {
        let mut req = app.http.request(method, app.url(path));
        if let Some(id) = id {
            req = req.header("X-Request-Id", id);
        }
        req.send()
    };
    let r = sent(
        Method::POST,
        "/api/v1/sales/1/items/1/orders",
        Some("gw-req-42"),
    )
    .await
    .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(r.headers()["x-request-id"], "gw-req-42");
    let mut minted = Vec::new();
    for path in ["/api/v1/nowhere", "/healthz"] {
        let r = sent(Method::GET, path, None).await.unwrap();
        minted.push(r.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    assert_ne!(minted[0], minted[1]);
    assert!(minted.iter().all(|id| id.len() > 8), "{minted:?}");
    // An id that is not a sane token is replaced rather than echoed.
    let r = sent(Method::GET, "/healthz", Some(&"x".repeat(200)))
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "x".repeat(200).as_str());
}
