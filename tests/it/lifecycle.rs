//! The order lifecycle end to end: payments, cancellation, expiry, units that return to the
//! sale exactly once, and the buyer's view of it.

use std::{collections::HashMap, time::Duration};

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use seckill::{auth::mint_token, lifecycle::signature, stock::ReleaseOutcome};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{JWT_SECRET, STACK, TestApp, eventually, spawn_with, test_settings, unique};

/// An app whose expiry job runs only when a test asks (`expire_once`), unless `job` is set.
async fn app(job: Option<Duration>) -> TestApp {
    let mut s = test_settings(&STACK.kafka_brokers).await;
    s.lifecycle.expiry_interval_ms = job.map_or(0, |d| d.as_millis() as u64);
    spawn_with(s).await
}

/// A one-item sale that started a second ago, with a payment window of `window_secs`.
async fn sale(app: &TestApp, stock: i64, limit: i64, window_secs: i64) -> (u64, u64) {
    let mut body = crate::helpers::live_sale_body(stock, limit);
    body["items"][0]["payment_window_secs"] = json!(window_secs);
    let (status, body) = app.admin(Method::POST, "/admin/v1/sales", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["items"][0]["payment_window_secs"], window_secs,
        "{body}"
    );
    (
        body["id"].as_u64().unwrap(),
        body["items"][0]["id"].as_u64().unwrap(),
    )
}

/// A signed payment notification: status and body.
async fn pay(app: &TestApp, order: &str, amount: i64, reference: &str) -> (StatusCode, Value) {
    let body =
        json!({"order_id": order, "amount_cents": amount, "provider_ref": reference}).to_string();
    let sig = signature::sign(
        app.settings().payment_secret.expose().as_bytes(),
        body.as_bytes(),
    );
    let r = app
        .http
        .post(app.url("/payments/v1/notify"))
        .header("x-signature", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A buyer's request to `path` (`GET` when `method` is GET).
async fn as_buyer(app: &TestApp, method: Method, user: &str, path: &str) -> (StatusCode, Value) {
    let token = mint_token(&JWT_SECRET, user, 600).unwrap();
    let r = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn cancel(app: &TestApp, user: &str, order: &str) -> (StatusCode, Value) {
    as_buyer(
        app,
        Method::POST,
        user,
        &format!("/api/v1/orders/{order}/cancel"),
    )
    .await
}

/// Order id by user, for `n` users `prefix0..` who each reserve one unit; asserts all 202.
async fn reserve_each(app: &TestApp, sale: u64, item: u64, prefix: &str, n: usize) -> Vec<String> {
    let buys = (0..n).map(|u| async move {
        let (s, body) = app.buy(sale, item, &format!("{prefix}{u}"), 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        body["order_id"].as_str().unwrap().to_string()
    });
    futures::future::join_all(buys).await
}

async fn wait_rows(app: &TestApp, item: u64, n: i64) {
    let db = app.db().clone();
    eventually(Duration::from_secs(60), || {
        let db = db.clone();
        async move {
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE item_id = ?")
                .bind(item)
                .fetch_one(&db)
                .await
                .unwrap();
            (rows >= n).then_some(())
        }
    })
    .await;
}

async fn states(app: &TestApp, item: u64) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM orders WHERE item_id = ? GROUP BY status",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// MySQL's remaining units and Redis's.
async fn stocks(app: &TestApp, sale: u64, item: u64) -> (i64, i64) {
    let mysql: i64 =
        sqlx::query_scalar("SELECT CAST(stock AS SIGNED) FROM sale_items WHERE id = ?")
            .bind(item)
            .fetch_one(app.db())
            .await
            .unwrap();
    let redis: i64 = app
        .redis()
        .get()
        .get(app.keys().item(sale, item).stock)
        .await
        .unwrap();
    (mysql, redis)
}

async fn assert_clean(app: &TestApp, sale: u64) {
    let report = app.services.reconciler.run_once(sale, false).await.unwrap();
    assert!(report.ok, "{}", report.to_table());
}

#[tokio::test]
async fn payment_notifications_are_checked_and_answered_once() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 10, 1, 900).await;
    let ids = reserve_each(&app, sale, item, "p", 3).await;
    wait_rows(&app, item, 3).await;

    // A bad signature changes nothing.
    let body = json!({"order_id": ids[0], "amount_cents": 1999, "provider_ref": "r0"}).to_string();
    let r = app
        .http
        .post(app.url("/payments/v1/notify"))
        .header(
            "x-signature",
            signature::sign(b"not-the-secret", body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (s, body) = pay(&app, &ids[0], 1, "r0").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "amount_cents");
    assert_eq!(states(&app, item).await["pending_payment"], 3);

    let (s, paid) = pay(&app, &ids[0], 1999, "r0").await;
    assert_eq!(s, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "paid");
    // The same payment again: the same answer. Another payment: already paid.
    let (s, again) = pay(&app, &ids[0], 1999, "r0").await;
    assert_eq!((s, &again["status"]), (StatusCode::OK, &json!("paid")));
    assert_eq!(again["paid_at"], paid["paid_at"]);
    let (s, other) = pay(&app, &ids[0], 1999, "r0-bis").await;
    assert_eq!(
        (s, other["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_paid"))
    );
    // A cancelled order is closed; the provider refunds.
    let (s, _) = cancel(&app, "p1", &ids[1]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, closed) = pay(&app, &ids[1], 1999, "r1").await;
    assert_eq!(
        (s, closed["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_closed"))
    );
    let (s, _) = pay(&app, &Uuid::now_v7().to_string(), 1999, "r9").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A paid order cannot be cancelled.
    let (s, body) = cancel(&app, "p0", &ids[0]).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_paid"))
    );
    let st = states(&app, item).await;
    assert_eq!(
        (st["paid"], st["cancelled"], st["pending_payment"]),
        (1, 1, 1)
    );
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn cancel_expire_and_a_repeated_release_each_return_a_unit_once() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 5, 1, 5).await;
    let ids = reserve_each(&app, sale, item, "c", 3).await;
    wait_rows(&app, item, 3).await;
    assert_eq!(stocks(&app, sale, item).await, (2, 2));

    let (s, first) = cancel(&app, "c0", &ids[0]).await;
    assert_eq!(
        (s, &first["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{first}"
    );
    let (s, second) = cancel(&app, "c0", &ids[0]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(second, first, "cancelling twice answers the same");
    // Someone else's order is as unknown as a random id.
    let (s, _) = cancel(&app, "c2", &ids[1]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stocks(&app, sale, item).await, (3, 3));

    // The window (5 s) passes: one expiry pass closes the other two, a second changes nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 2);
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 0);
    assert_eq!(stocks(&app, sale, item).await, (5, 5));
    let (s, body) = cancel(&app, "c1", &ids[1]).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_closed"))
    );

    // A release asked again (a sweep after a crash between the MySQL commit and the record)
    // gives nothing more.
    sqlx::query("UPDATE orders SET released_at = NULL WHERE item_id = ?")
        .bind(item)
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(app.services.lifecycle.sweep_once().await.unwrap(), 3);
    let meta = app.db().clone();
    let version: String = sqlx::query_scalar("SELECT uid FROM sales WHERE id = ?")
        .bind(sale)
        .fetch_one(&meta)
        .await
        .unwrap();
    let again = app
        .services
        .stock
        .release(
            sale,
            item,
            "v4",
            &version,
            &[Uuid::parse_str(&ids[2]).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(again, [ReleaseOutcome::Already { units: 1 }]);
    assert_eq!(stocks(&app, sale, item).await, (5, 5));
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn units_that_come_back_sell_again_and_the_states_add_up() {
    // Stock 100, window 5 s, 300 buyers: 100 reserve; 40 pay, 10 cancel, 50 expire; then
    // exactly 60 more buyers get 202.
    let app = app(None).await;
    let (sale, item) = sale(&app, 100, 1, 5).await;
    let first: Vec<(StatusCode, Value)> = futures::future::join_all((0..300).map(|u| {
        let app = &app;
        async move { app.buy(sale, item, &format!("r{u}"), 1, None).await }
    }))
    .await;
    let winners: Vec<(usize, String)> = first
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s == StatusCode::ACCEPTED)
        .map(|(u, (_, b))| (u, b["order_id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(winners.len(), 100);
    wait_rows(&app, item, 100).await;
    for (_, id) in &winners[..40] {
        let (s, body) = pay(&app, id, 1999, &format!("ref-{id}")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    for (u, id) in &winners[40..50] {
        let (s, body) = cancel(&app, &format!("r{u}"), id).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(app.services.lifecycle.expire_once().await.unwrap(), 50);

    let losers: Vec<usize> = (0..300)
        .filter(|u| !winners.iter().any(|(w, _)| w == u))
        .collect();
    let second: Vec<StatusCode> = futures::future::join_all(losers.iter().map(|u| {
        let app = &app;
        async move { app.buy(sale, item, &format!("r{u}"), 1, None).await.0 }
    }))
    .await;
    let again = second
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(again, 60, "{second:?}");
    wait_rows(&app, item, 160).await;
    let st = states(&app, item).await;
    assert_eq!(
        (
            st["paid"],
            st["pending_payment"],
            st["cancelled"],
            st["expired"]
        ),
        (40, 60, 10, 50),
        "{st:?}"
    );
    assert_eq!(stocks(&app, sale, item).await, (0, 0), "nothing oversold");
    assert_clean(&app, sale).await;
}

#[tokio::test]
async fn a_buyer_who_cancelled_can_buy_again_within_the_limit() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 10, 1, 900).await;
    let (s, body) = app.buy(sale, item, "back", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let id = body["order_id"].as_str().unwrap().to_string();
    let (s, body) = app.buy(sale, item, "back", 1, None).await;
    assert_eq!(body["code"], "limit_exceeded", "{s} {body}");
    // Not persisted yet, it cannot be cancelled; once it is, it can.
    let cancelled = eventually(Duration::from_secs(30), || {
        let (app, id) = (&app, &id);
        async move {
            let (s, body) = cancel(app, "back", id).await;
            (s == StatusCode::OK).then_some(body)
        }
    })
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let (s, body) = app.buy(sale, item, "back", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn a_buyer_lists_only_their_own_orders_page_by_page() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 10, 3, 900).await;
    let alice = format!("alice-{}", unique());
    for _ in 0..3 {
        let (s, _) = app.buy(sale, item, &alice, 1, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let (s, _) = app.buy(sale, item, "bob", 1, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_rows(&app, item, 4).await;

    let (s, page) = as_buyer(&app, Method::GET, &alice, "/api/v1/orders?limit=2").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let first: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(first.len(), 2);
    assert!(first[0] > first[1], "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = as_buyer(
        &app,
        Method::GET,
        &alice,
        &format!("/api/v1/orders?limit=2&cursor={cursor}&sale_id={sale}"),
    )
    .await;
    assert_eq!(rest["orders"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    for o in page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["orders"].as_array().unwrap())
    {
        assert_eq!(o["status"], "pending_payment");
        assert!(o["expires_at"].is_string(), "{o}");
    }
    let (_, bobs) = as_buyer(&app, Method::GET, "bob", "/api/v1/orders").await;
    let bobs = bobs["orders"].as_array().unwrap();
    assert_eq!(bobs.len(), 1, "never another buyer's orders");
    let (_, paid) = as_buyer(&app, Method::GET, &alice, "/api/v1/orders?status=paid").await;
    assert!(paid["orders"].as_array().unwrap().is_empty());
    for bad in [
        "limit=0",
        "limit=101",
        "status=gone",
        "cursor=nope",
        "colour=red",
    ] {
        let (s, body) = as_buyer(&app, Method::GET, &alice, &format!("/api/v1/orders?{bad}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (s, _) = app
        .http
        .get(app.url("/api/v1/orders"))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_expiry_job_closes_an_order_within_its_window_plus_five_seconds() {
    let app = app(Some(Duration::from_millis(200))).await;
    let (sale, item) = sale(&app, 5, 1, 5).await;
    let ids = reserve_each(&app, sale, item, "e", 1).await;
    wait_rows(&app, item, 1).await;
    let expires_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT expires_at FROM orders WHERE order_id = ?")
            .bind(Uuid::parse_str(&ids[0]).unwrap())
            .fetch_one(app.db())
            .await
            .unwrap();
    let closed_at: chrono::DateTime<chrono::Utc> = eventually(Duration::from_secs(30), || {
        let db = app.db().clone();
        let id = Uuid::parse_str(&ids[0]).unwrap();
        async move {
            sqlx::query_scalar(
                "SELECT closed_at FROM orders WHERE order_id = ? AND status = 'expired'",
            )
            .bind(id)
            .fetch_optional(&db)
            .await
            .unwrap()
        }
    })
    .await;
    let late = closed_at - expires_at;
    assert!(
        late >= chrono::Duration::zero() && late <= chrono::Duration::seconds(5),
        "expired {late} after its time"
    );
    eventually(Duration::from_secs(10), || {
        let app = &app;
        async move { (stocks(app, sale, item).await == (5, 5)).then_some(()) }
    })
    .await;
    let metrics = app.services.metrics.render();
    assert!(
        metrics.contains("seckill_order_expiry_lateness_seconds_count 1"),
        "the lateness is measured"
    );
}

#[tokio::test]
async fn lifecycle_events_reach_their_topic() {
    let app = app(None).await;
    let (sale, item) = sale(&app, 5, 1, 5).await;
    let ids = reserve_each(&app, sale, item, "k", 3).await;
    wait_rows(&app, item, 3).await;
    pay(&app, &ids[0], 1999, "ref-k0").await;
    cancel(&app, "k1", &ids[1]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.services.lifecycle.expire_once().await.unwrap();

    use rdkafka::{
        ClientConfig, Message,
        consumer::{Consumer, StreamConsumer},
    };
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &STACK.kafka_brokers)
        .set("group.id", format!("events-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader
        .subscribe(&[&app.settings().lifecycle.events_topic])
        .unwrap();
    let mut kinds = HashMap::new();
    while kinds.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(60), reader.recv())
            .await
            .expect("three lifecycle events within 60 s")
            .unwrap();
        let event: Value = serde_json::from_slice(msg.payload().unwrap()).unwrap();
        let id = event["order_id"].as_str().unwrap().to_string();
        if ids.contains(&id) {
            kinds.insert(id, event["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(kinds[&ids[0]], "order_paid");
    assert_eq!(kinds[&ids[1]], "order_cancelled");
    assert_eq!(kinds[&ids[2]], "order_expired");
}

#[tokio::test]
async fn payment_and_expiry_race_a_thousand_times_and_exactly_one_wins_each() {
    let app = app(Some(Duration::from_millis(50))).await;
    let (sale, item) = sale(&app, 1_000, 1, 900).await;
    let ids = reserve_each(&app, sale, item, "race", 1_000).await;
    wait_rows(&app, item, 1_000).await;
    // Every window ends at one instant, 1.5 s from now; the 1,000 payments arrive spread over
    // the second around it, while the expiry job runs every 50 ms.
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1_500);
    sqlx::query("UPDATE orders SET expires_at = ? WHERE item_id = ?")
        .bind(due)
        .bind(item)
        .execute(app.db())
        .await
        .unwrap();
    let start = tokio::time::Instant::now() + Duration::from_millis(1_000);
    let answers: Vec<(String, StatusCode, Value)> =
        futures::future::join_all(ids.iter().enumerate().map(|(i, id)| {
            let app = &app;
            async move {
                tokio::time::sleep_until(start + Duration::from_millis(i as u64)).await;
                let (s, body) = pay(app, id, 1999, &format!("ref-{id}")).await;
                (id.clone(), s, body)
            }
        }))
        .await;

    // The job expires whatever was not paid; then every order is closed one way.
    eventually(Duration::from_secs(60), || {
        let app = &app;
        async move {
            let st = states(app, item).await;
            (!st.contains_key("pending_payment")).then_some(())
        }
    })
    .await;
    let status: HashMap<String, String> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT order_id, status FROM orders WHERE item_id = ?",
    )
    .bind(item)
    .fetch_all(app.db())
    .await
    .unwrap()
    .into_iter()
    .map(|(id, s)| (id.to_string(), s))
    .collect();
    let mut paid = 0;
    for (id, s, body) in &answers {
        match status[id].as_str() {
            "paid" => {
                assert_eq!(
                    *s,
                    StatusCode::OK,
                    "{id} paid, but the payment was told {s} {body}"
                );
                paid += 1;
            }
            "expired" => assert_eq!(
                (*s, body["code"].as_str()),
                (StatusCode::CONFLICT, Some("order_closed")),
                "{id} expired, so its payment is refused (the provider refunds)"
            ),
            other => panic!("{id} ended {other}"),
        }
    }
    let expired = 1_000 - paid;
    assert!(
        paid > 0 && expired > 0,
        "the race went both ways: {paid} paid, {expired} expired"
    );
    // Units came back for the expired orders only, once each, on both sides.
    eventually(Duration::from_secs(30), || {
        let app = &app;
        async move {
            (stocks(app, sale, item).await == (expired as i64, expired as i64)).then_some(())
        }
    })
    .await;
    let released: Vec<String> = app
        .redis()
        .get()
        .hkeys(app.keys().item(sale, item).released)
        .await
        .unwrap();
    assert_eq!(released.len(), expired);
    assert!(released.iter().all(|id| status[id] == "expired"));
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_events WHERE item_id = ?")
        .bind(item)
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(events, 1_000, "one lifecycle event per order");
    assert_clean(&app, sale).await;
}
