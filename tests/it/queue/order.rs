//! Who comes first: arrival order after the start, exactly; the pre-queue drawn at random at
//! the start; a second join answering the first; two instances agreeing on one queue.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{buy_admitted, join, poll_at, poll_until, queued_sale};
use crate::support::{spawn_app, two_instances};

/// The claims of an admission token (its payload, unverified: the server checks it).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn joins_after_the_start_are_admitted_in_arrival_order_exactly() {
    let app = spawn_app().await;
    let start = Utc::now() - chrono::Duration::seconds(1);
    let (sale, _) = queued_sale(&app, 100, start, json!({"admit_per_sec": 4})).await;
    let mut tickets = Vec::new();
    for i in 0..24 {
        let joined = join(&app, sale, &format!("fifo-{i}")).await;
        assert_eq!(joined["position"], i, "{joined}");
        tickets.push(joined["ticket"].as_str().unwrap().to_string());
    }
    // Every answer admits exactly the places below the now-serving it shows, and each place
    // is admitted no later than the places after it.
    let mut admitted_at = vec![None; tickets.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while admitted_at.iter().any(Option::is_none) {
        assert!(tokio::time::Instant::now() < deadline, "{admitted_at:?}");
        for (i, t) in tickets.iter().enumerate() {
            let (_, body, _) = poll_at(&app, sale, t).await;
            let serving = body["now_serving"].as_u64().unwrap();
            let admitted = body["state"] == "admitted";
            assert_eq!(admitted, (i as u64) < serving, "place {i}: {body}");
            if admitted && admitted_at[i].is_none() {
                let c = claims(body["admission_token"].as_str().unwrap());
                assert_eq!(c["pos"], i, "{c}");
                admitted_at[i] = Some(c["nbf"].as_u64().unwrap());
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let times: Vec<u64> = admitted_at.into_iter().map(Option::unwrap).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        times[23] > times[0],
        "admitted over time, at the rate: {times:?}"
    );
}

#[tokio::test]
async fn the_pre_queue_is_drawn_at_random_at_the_start_and_later_joins_queue_behind_it() {
    let app = spawn_app().await;
    let start = Utc::now() + chrono::Duration::seconds(5);
    let opens = (Utc::now() - chrono::Duration::seconds(60)).to_rfc3339();
    let (sale, _) = queued_sale(
        &app,
        100,
        start,
        json!({"admit_per_sec": 1, "queue_opens_at": opens}),
    )
    .await;
    let mut early = Vec::new();
    for i in 0..40 {
        let joined = join(&app, sale, &format!("early-{i}")).await;
        assert_eq!(
            (joined["state"].as_str(), &joined["position"]),
            (Some("waiting"), &Value::Null),
            "{joined}"
        );
        assert!(joined["eta_secs"].as_u64().unwrap() <= 5, "{joined}");
        early.push(joined["ticket"].as_str().unwrap().to_string());
    }
    assert!(
        Utc::now() < start,
        "the pre-queue joins took too long to test the draw"
    );
    tokio::time::sleep((start - Utc::now()).to_std().unwrap_or_default()).await;
    let late = join(&app, sale, "late-0").await;
    assert_eq!(late["position"], 40, "after the whole pre-queue: {late}");
    let mut drawn = Vec::new();
    for t in &early {
        let body = poll_until(&app, sale, t, Duration::from_secs(10), |b| {
            !b["position"].is_null()
        })
        .await;
        drawn.push(body["position"].as_u64().unwrap());
    }
    let mut sorted = drawn.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..40).collect::<Vec<u64>>(),
        "a permutation: {drawn:?}"
    );
    let kept = drawn
        .iter()
        .enumerate()
        .filter(|(i, p)| *i as u64 == **p)
        .count();
    assert!(kept < 8, "{kept} of 40 kept their arrival place: {drawn:?}");
    let (_, again, _) = poll_at(&app, sale, &early[0]).await;
    assert_eq!(again["position"], drawn[0], "the draw is fixed once made");
}

#[tokio::test]
async fn joining_again_answers_the_same_ticket_and_place() {
    let app = spawn_app().await;
    let (sale, _) = queued_sale(
        &app,
        10,
        Utc::now(),
        json!({"admit_per_sec": 1, "max_active": 1}),
    )
    .await;
    let _ = join(&app, sale, "first").await;
    let a = join(&app, sale, "twice").await;
    let _ = join(&app, sale, "third").await;
    let b = join(&app, sale, "twice").await;
    assert_eq!(a["ticket"], b["ticket"]);
    assert_eq!(
        (a["position"].as_u64(), b["position"].as_u64()),
        (Some(1), Some(1))
    );
    let text = app.metrics_text().await;
    assert!(
        text.contains("seckill_queue_joins_total{outcome=\"rejoined\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn two_instances_serve_one_queue_consistently() {
    let (a, b) = two_instances(|_| {}).await;
    let (sale, item) = queued_sale(&a, 50, Utc::now(), json!({"admit_per_sec": 2})).await;
    let mut tickets = Vec::new();
    for i in 0..10u64 {
        let app = if i % 2 == 0 { &a } else { &b };
        let joined = join(app, sale, &format!("two-{i}")).await;
        assert_eq!(joined["position"], i, "{joined}");
        tickets.push(joined["ticket"].as_str().unwrap().to_string());
    }
    for (i, t) in tickets.iter().enumerate() {
        let (_, on_a, _) = poll_at(&a, sale, t).await;
        let (_, on_b, _) = poll_at(&b, sale, t).await;
        assert_eq!(
            (on_a["position"].as_u64(), on_b["position"].as_u64()),
            (Some(i as u64), Some(i as u64))
        );
    }
    // Admitted through one instance, bought through the other.
    let admitted = poll_until(&b, sale, &tickets[0], Duration::from_secs(10), |v| {
        v["state"] == "admitted"
    })
    .await;
    let token = admitted["admission_token"].as_str().unwrap();
    let (status, body) = buy_admitted(&a, sale, item, "two-0", Some(token)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = poll_until(&a, sale, &tickets[9], Duration::from_secs(15), |v| {
        v["state"] == "admitted"
    })
    .await;
    let (_, on_b, _) = poll_at(&b, sale, &tickets[9]).await;
    assert_eq!(on_b["state"], "admitted", "a: {last}, b: {on_b}");
}
