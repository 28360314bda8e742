//! The admission on the buy path (none, another buyer's, another sale's, lapsed: 403 with a
//! code naming why) and the proof of work on joining.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{buy_admitted, join, join_with, poll_until, queued_sale};
use crate::support::{answer, send, spawn_app, token};

/// An admitted ticket's admission token for `user` (joins and waits for admission).
async fn admitted(app: &crate::support::TestApp, sale: u64, user: &str) -> String {
    let joined = join(app, sale, user).await;
    let ticket = joined["ticket"].as_str().unwrap();
    let body = poll_until(app, sale, ticket, Duration::from_secs(10), |b| {
        b["state"] == "admitted"
    })
    .await;
    body["admission_token"].as_str().unwrap().to_string()
}

fn code(body: &serde_json::Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_buy_needs_the_buyers_own_admission_to_this_sale_still_valid() {
    let app = spawn_app().await;
    let ttl = json!({"admit_per_sec": 100, "admission_ttl_secs": 5});
    let (sale, item) = queued_sale(&app, 10, Utc::now(), ttl.clone()).await;
    let (other, _) = queued_sale(&app, 10, Utc::now(), ttl).await;
    let alice = admitted(&app, sale, "alice").await;
    let elsewhere = admitted(&app, other, "bob").await;

    let refusals = [
        (None, "admission_required"),
        (Some("not-a-token"), "admission_invalid"),
        (Some(elsewhere.as_str()), "admission_invalid"),
    ];
    for (token, expected) in refusals {
        let (status, body) = buy_admitted(&app, sale, item, "bob", token).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, expected),
            "{body}"
        );
    }
    let (status, body) = buy_admitted(&app, sale, item, "bob", Some(&alice)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "admission_foreign"),
        "{body}"
    );
    let (status, body) = buy_admitted(&app, sale, item, "alice", Some(&alice)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Carol's admission lapses unused (5 s, and the 2 s of leeway between instances).
    let carol = admitted(&app, sale, "carol").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (status, body) = buy_admitted(&app, sale, item, "carol", Some(&carol)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "admission_expired"),
        "{body}"
    );
}

#[tokio::test]
async fn an_open_sale_needs_no_admission_and_has_no_queue() {
    let app = spawn_app().await;
    let (sale, item) = app.create_live_sale(5, 1).await;
    let (status, body) = buy_admitted(&app, sale, item, "dave", None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = join_with(&app, sale, "dave", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "queue_not_used"),
        "{body}"
    );
}

/// Leading zero bits of SHA-256 over `challenge:nonce`.
fn zero_bits(challenge: &str, nonce: &str) -> u32 {
    let h = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    let mut bits = 0;
    for b in h {
        if b != 0 {
            return bits + b.leading_zeros();
        }
        bits += 8;
    }
    bits
}

/// The first nonce with at least (`enough`) or fewer than (`!enough`) `bits` zero bits.
fn nonce(challenge: &str, bits: u32, enough: bool) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| (zero_bits(challenge, n) >= bits) == enough)
        .unwrap()
}

#[tokio::test]
async fn a_join_without_a_solved_challenge_is_refused_when_the_sale_asks_for_one() {
    let app = spawn_app().await;
    let (sale, _) = queued_sale(&app, 10, Utc::now(), json!({"pow_bits": 12})).await;
    let (status, body) = join_with(&app, sale, "eve", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "challenge_required"),
        "{body}"
    );

    let req = app
        .http
        .get(app.url(&format!("/api/v1/sales/{sale}/queue/challenge")))
        .bearer_auth(token("eve"));
    let (status, c) = answer(send(req).await).await;
    assert_eq!(
        (status, c["bits"].as_u64()),
        (StatusCode::OK, Some(12)),
        "{c}"
    );
    let challenge = c["challenge"].as_str().unwrap();
    let (nonce, wrong) = (nonce(challenge, 12, true), nonce(challenge, 12, false));
    let bad = json!({"challenge": challenge, "nonce": wrong});
    let (status, body) = join_with(&app, sale, "eve", bad).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "challenge_failed"),
        "{body}"
    );
    // Another buyer cannot use Eve's solution.
    let solved = json!({"challenge": challenge, "nonce": nonce});
    let (status, body) = join_with(&app, sale, "mallory", solved.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "challenge_failed"),
        "{body}"
    );
    let (status, body) = join_with(&app, sale, "eve", solved).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["position"], 0, "{body}");
}
