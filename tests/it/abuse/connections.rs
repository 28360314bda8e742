//! Slow and greedy clients: a header trickled a byte at a time loses its connection, a listener
//! past its connection cap turns new ones away cheaply, and an oversized head gets 431.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{STACK, metric, send, spawn_with, test_settings};

/// Opens a connection and starts a request head that it never finishes.
async fn half_a_head(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    s
}

/// Trickles a byte of header every `every` until the server closes the connection; returns
/// when that happened, counted from `start`.
async fn trickle_until_closed(mut s: TcpStream, every: Duration, start: Instant) -> Duration {
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            read = s.read(&mut buf) => match read {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            },
            () = tokio::time::sleep(every) => {
                if s.write_all(b"a").await.is_err() {
                    return start.elapsed();
                }
            }
        }
    }
}

#[tokio::test]
async fn a_thousand_trickled_headers_are_closed_and_healthz_answers_throughout() {
    let app = spawn_with(test_settings("embedded").await).await;
    let start = Instant::now();
    let mut trickles = Vec::new();
    for _ in 0..1_000 {
        let s = half_a_head(app.addr).await;
        trickles.push(tokio::spawn(trickle_until_closed(
            s,
            Duration::from_secs(5),
            start,
        )));
    }
    // Health checks keep answering, each within a second, while the trickles hold on.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut probes = 0;
    while trickles.iter().any(|t| !t.is_finished()) && start.elapsed() < Duration::from_secs(70) {
        let r = http.get(app.url("/healthz")).send().await;
        assert!(
            r.as_ref().is_ok_and(|r| r.status().is_success()),
            "/healthz did not answer within 1 s while {} trickles were open: {r:?}",
            trickles.iter().filter(|t| !t.is_finished()).count()
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let still_open = trickles.iter().filter(|t| !t.is_finished()).count();
    assert_eq!(
        still_open, 0,
        "{still_open} trickled heads still held their connections after 70 s"
    );
    let mut latest = Duration::ZERO;
    for t in trickles {
        latest = latest.max(t.await.unwrap());
    }
    eprintln!(
        "1,000 trickled heads: the last closed {latest:?} after the first opened; {probes} health checks answered meanwhile"
    );
    assert!(
        latest <= Duration::from_secs(60),
        "the trickles held their connections {latest:?}"
    );
    let closed = metric(
        &app,
        "seckill_http_connections_closed_total",
        r#"listener="public",reason="header_timeout""#,
    )
    .await;
    assert!(closed >= 1_000.0, "{closed} closed for slow headers");
}

#[tokio::test]
async fn past_its_cap_a_listener_answers_new_connections_503_and_counts_them() {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    settings.http.max_connections = 20;
    let app = spawn_with(settings).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(half_a_head(app.addr).await);
    }
    // Give the server the moment to take them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        // The answer comes at once, before any request is read.
        let mut extra = TcpStream::connect(app.addr).await.unwrap();
        let mut answer = String::new();
        let _ = extra.read_to_string(&mut answer).await;
        assert!(
            answer.starts_with("HTTP/1.1 503") && answer.contains("\"code\":\"unavailable\""),
            "over the cap: {answer:?}"
        );
    }
    let refused = metric(
        &app,
        "seckill_http_connections_refused_total",
        r#"listener="public""#,
    )
    .await;
    assert!(refused >= 5.0, "{refused} refused");
    // The admin listener has a cap of its own, untouched.
    let r = app.get_admin("/healthz").await;
    assert!(r.status().is_success());
    // Once they go, new connections are served again.
    drop(held);
    crate::support::eventually(Duration::from_secs(10), || async {
        let r = app.http.get(app.url("/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431() {
    let app = spawn_with(test_settings("embedded").await).await;
    let big = "a".repeat(20 * 1024);
    let r = send(app.http.get(app.url("/healthz")).header("x-big", &big)).await;
    assert_eq!(
        r.status(),
        reqwest::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let small = "a".repeat(8 * 1024);
    let r = send(app.http.get(app.url("/healthz")).header("x-big", &small)).await;
    assert!(r.status().is_success(), "8 KiB of headers is fine");
}
