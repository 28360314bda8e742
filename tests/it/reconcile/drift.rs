//! Drift in any store is found, and named with its ids: a ledger entry or an order row deleted,
//! a stock key changed, an order duplicated, a buyer's count Redis got wrong.

use std::time::Duration;

use redis::AsyncCommands;
use seckill::stock::ledger::ItemLedger;
use uuid::Uuid;

use super::{check, drained_sale, failing, reconcile};
use crate::support::{
    delete_order, overwrite_stock, redis_ledger, spawn_app, token, wait_rows_exactly,
};

#[tokio::test]
async fn a_deleted_ledger_entry_is_found_with_its_id() {
    let app = spawn_app().await;
    let (sale, item, ids) = drained_sale(&app, 3).await;
    let mut conn = app.redis().get();
    let ledger = ItemLedger::open(&mut conn, app.item_keys(sale, item).await, sale, item)
        .await
        .unwrap();
    let (key, field) = ledger.locate(&ids[1].parse().unwrap());
    let _: i64 = conn.hdel(key, field).await.unwrap();
    let report = reconcile(&app, sale, false).await;
    assert_eq!(report["ok"], false);
    assert_eq!(
        check(&report, "no_orphan_orders")["sample_ids"],
        serde_json::json!([ids[1]])
    );
    assert!(failing(&report).contains(&"stock_balance".to_string()));
}

#[tokio::test]
async fn a_deleted_order_row_is_found_with_its_id() {
    let app = spawn_app().await;
    let (sale, _, ids) = drained_sale(&app, 3).await;
    delete_order(app.db(), &ids[2]).await;
    let report = reconcile(&app, sale, false).await;
    assert_eq!(
        check(&report, "ledger_persisted")["sample_ids"],
        serde_json::json!([ids[2]])
    );
    assert!(failing(&report).contains(&"mysql_stock_balance".to_string()));
    // The stock does not balance, so repair refuses to re-emit and says why.
    let repaired = reconcile(&app, sale, true).await;
    assert_eq!(repaired["repaired"], 0);
    assert!(
        repaired["not_repaired"][0]
            .as_str()
            .unwrap()
            .contains("does not balance")
    );
}

#[tokio::test]
async fn a_changed_stock_key_is_found() {
    let app = spawn_app().await;
    let (sale, item, _) = drained_sale(&app, 2).await;
    overwrite_stock(&app, sale, item, 40).await;
    let report = reconcile(&app, sale, false).await;
    assert_eq!(failing(&report), vec!["stock_balance"]);
    assert!(
        check(&report, "stock_balance")["detail"]
            .as_str()
            .unwrap()
            .contains("remaining 40")
    );
    // Operators see it on the gauge of the sale.
    let gauge = app
        .services
        .metrics
        .reconcile
        .discrepancies
        .with_label_values(&[&sale.to_string()])
        .get();
    assert_eq!(gauge, 1, "one failing check");
}

#[tokio::test]
async fn a_duplicated_order_is_found_with_both_ids() {
    let app = spawn_app().await;
    let (sale, _, ids) = drained_sale(&app, 2).await;
    let copy = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (order_id, sale_id, item_id, user_id, quantity, price_cents, status, reserved_at) \
         SELECT ?, sale_id, item_id, user_id, quantity, price_cents, status, reserved_at FROM orders WHERE order_id = ?",
    )
    .bind(copy)
    .bind(Uuid::parse_str(&ids[0]).unwrap())
    .execute(app.db())
    .await
    .unwrap();
    let report = reconcile(&app, sale, false).await;
    let dup = check(&report, "no_duplicate_orders");
    assert_eq!(dup["ok"], false);
    let listed: Vec<&str> = dup["sample_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&ids[0].as_str()) && listed.contains(&copy.to_string().as_str()),
        "{dup}"
    );
    assert_eq!(
        check(&report, "no_orphan_orders")["sample_ids"],
        serde_json::json!([copy.to_string()])
    );
}

/// The checks the stampede test above cannot run (its 60 s grace keeps every entry in flight):
/// after a stampede drains, `ledger_persisted` and the buyers-versus-ledger check look at every
/// entry, pass, and then fail on a missing row and on a buyer count Redis got wrong.
#[tokio::test]
async fn after_a_drained_stampede_the_ledger_and_buyer_checks_run_and_catch_drift() {
    let app = spawn_app().await; // ledger grace 0: every entry is checked
    let (sale, item) = app.create_live_sale(100_000, 1).await;
    let url = app.buy_url(sale, item);
    let mut buyers = Vec::new();
    for w in 0..8 {
        let (http, url) = (app.http.clone(), url.clone());
        buyers.push(tokio::spawn(async move {
            for i in 0..40 {
                let token = token(&format!("d{w}-{i}"));
                http.post(&url).bearer_auth(token).send().await.unwrap();
            }
        }));
    }
    for b in buyers {
        b.await.unwrap();
    }
    let reserved = redis_ledger(app.redis(), app.item_keys(sale, item).await, sale, item)
        .await
        .events
        .len() as u64;
    assert!(reserved >= 300, "the stampede reserved {reserved}");
    wait_rows_exactly(app.db(), item, reserved as i64, Duration::from_secs(60)).await;
    let report = reconcile(&app, sale, false).await;
    assert_eq!(report["ok"], true, "{report}");
    let ran = check(&report, "ledger_persisted");
    assert_eq!(
        ran["detail"], "0 ledger entries older than 0 s have no MySQL row",
        "every entry was checked"
    );

    // A persisted row disappears: ledger_persisted names it.
    let first = "SELECT order_id FROM orders WHERE item_id = ? ORDER BY order_id LIMIT 1";
    let victim: Vec<u8> = sqlx::query_scalar(first)
        .bind(item)
        .fetch_one(app.db())
        .await
        .unwrap();
    let victim_id = Uuid::from_slice(&victim).unwrap().to_string();
    delete_order(app.db(), &victim_id).await;
    // Redis counts fewer units for a buyer than the ledger holds for them (within the limit,
    // so only the buyers-versus-ledger comparison can see it).
    let mut conn = app.redis().get();
    let ledger = ItemLedger::open(&mut conn, app.item_keys(sale, item).await, sale, item)
        .await
        .unwrap();
    let _: () = conn
        .hset(ledger.buyer_key("d3-7"), "d3-7", 0)
        .await
        .unwrap();
    let report = reconcile(&app, sale, false).await;
    let missing = check(&report, "ledger_persisted");
    assert_eq!(missing["ok"], false);
    assert_eq!(missing["sample_ids"], serde_json::json!([victim_id]));
    let limits = check(&report, "user_limit_redis");
    assert_eq!(limits["ok"], false, "{report}");
    assert!(
        limits["sample_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().contains("d3-7")),
        "{limits}"
    );
}
