//! The `loadtest` binary and library against a stub HTTP server (no seckill needed): live
//! lines, Ctrl-C, exit codes, and retries that keep their idempotency key.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the stub answers: status, extra header lines, body.
type Reply = (u16, String, String);

/// A keep-alive HTTP/1.1 server on a free port; `handler` gets the request line and the
/// lower-cased headers.
async fn stub<F>(handler: F) -> String
where
    F: Fn(&str, &HashMap<String, String>) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, handler.clone()));
        }
    });
    base
}

async fn serve<F>(mut stream: TcpStream, handler: Arc<F>)
where
    F: Fn(&str, &HashMap<String, String>) -> Reply,
{
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        let (status, extra, body) = handler(&request_line, &headers);
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn ok_healthz(_: &str, _: &HashMap<String, String>) -> Reply {
    (200, String::new(), "ok".into())
}

fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[tokio::test]
async fn live_lines_come_once_a_second_as_plain_text_when_not_on_a_terminal() {
    let base = stub(ok_healthz).await;
    let out = loadtest()
        .args(["--base-url", &base, "--endpoint", "healthz"])
        .args(["--concurrency", "2", "--duration", "3s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" req/s ")).collect();
    assert!(lines.len() >= 2, "one line a second: {err}");
    for l in &lines {
        assert!(
            l.contains("p50 ") && l.contains("p99 ") && l.contains("reserved "),
            "{l}"
        );
    }
    assert!(
        !err.contains('\u{1b}') && !err.contains('\r'),
        "plain lines: {err:?}"
    );
    let summary = text(&out.stdout);
    assert!(summary.contains("requests "), "{summary}");
    // --no-progress: nothing live.
    let quiet = loadtest()
        .args([
            "--base-url",
            &base,
            "--endpoint",
            "healthz",
            "--no-progress",
        ])
        .args(["--concurrency", "2", "--duration", "1500ms"])
        .output()
        .unwrap();
    assert!(!text(&quiet.stderr).contains(" req/s "), "{quiet:?}");
}

/// Starts a 60-second run, interrupts it after a moment, returns (exit code, stdout, stderr,
/// how long the run lasted after the signal).
fn interrupted_run(base: &str, extra: &[&str]) -> (Option<i32>, String, String, Duration) {
    let child = loadtest()
        .args(["--base-url", base, "--endpoint", "healthz"])
        .args(["--concurrency", "2", "--duration", "60s"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr),
        sent.elapsed(),
    )
}

#[tokio::test]
async fn ctrl_c_stops_the_run_and_prints_the_summary_of_what_ran() {
    let base = stub(ok_healthz).await;
    let (code, stdout, stderr, after) =
        tokio::task::spawn_blocking(move || interrupted_run(&base, &["--no-progress"]))
            .await
            .unwrap();
    assert!(
        after < Duration::from_secs(10),
        "stopped soon after the signal"
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted after"), "{stdout}");
    let requests: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("requests    "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a requests line: {stdout}"));
    assert!(requests > 0, "{stdout}");
    assert!(stdout.contains("outcomes    reserved"), "{stdout}");
}

#[tokio::test]
async fn an_interrupted_run_still_exits_1_when_a_threshold_breaks() {
    let base = stub(ok_healthz).await;
    let (code, stdout, stderr, _) = tokio::task::spawn_blocking(move || {
        interrupted_run(&base, &["--no-progress", "--threshold", "rps>100000000"])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted after"), "{stdout}");
    assert!(
        stdout.contains("FAILED rps>100000000 (measured"),
        "{stdout}"
    );
    assert!(
        stderr.contains("threshold broken: rps>100000000"),
        "{stderr}"
    );
}

#[test]
fn a_threshold_that_does_not_parse_is_a_usage_error() {
    let out = loadtest()
        .args([
            "--endpoint",
            "healthz",
            "--concurrency",
            "1",
            "--requests",
            "1",
        ])
        .args(["--threshold", "p99<5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid threshold 'p99<5'") && err.contains("needs a unit"),
        "{err}"
    );
}

#[tokio::test]
async fn retries_wait_for_retry_after_and_keep_their_idempotency_key() {
    // Every key's first attempt: 503 unconfirmed, Retry-After 0. Its second: the order again.
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let keys = seen.clone();
    let base = stub(move |_, headers| {
        let Some(key) = headers.get("idempotency-key") else {
            return (422, String::new(), r#"{"code":"invalid_field"}"#.into());
        };
        let mut seen = keys.lock().unwrap();
        let n = seen.entry(key.clone()).or_default();
        *n += 1;
        if *n == 1 {
            (
                503,
                "retry-after: 0\r\n".into(),
                r#"{"code":"unconfirmed","detail":"x"}"#.into(),
            )
        } else {
            let id = format!("00000000-0000-7000-8000-{:012}", seen.len());
            (
                202,
                "idempotent-replayed: true\r\n".into(),
                format!(r#"{{"order_id":"{id}","status":"reserved"}}"#),
            )
        }
    })
    .await;
    let args = <loadtest::Args as clap::Parser>::try_parse_from([
        "loadtest",
        "--base-url",
        &base,
        "--jwt-secret",
        "s",
        "--sale",
        "1",
        "--item",
        "1",
        "--users",
        "10",
        "--concurrency",
        "3",
        "--requests",
        "30",
        "--idempotency-keys",
        "--retry-on",
        "503,429",
        "--no-progress",
    ])
    .unwrap();
    let s = loadtest::run(args, false).await.unwrap();
    assert_eq!(
        (s.requests, s.outcomes.reserved),
        (30, 30),
        "{}",
        s.render()
    );
    assert_eq!(s.retries.retries, 30);
    assert_eq!(s.retries.by_status.get(&503), Some(&30));
    assert_eq!((s.retries.replayed, s.retries.gave_up), (30, 0));
    assert_eq!(
        s.unknown_fate, 30,
        "every unconfirmed answer left its buy's fate open"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 30, "a fresh key per buy");
    assert!(
        seen.values().all(|n| *n == 2),
        "each key sent twice: {seen:?}"
    );
    assert!(
        s.render()
            .contains("retries     30 (503: 30), 30 answers replayed")
    );
}

#[tokio::test]
async fn retries_stop_after_five_attempts() {
    let base = stub(|_, _| {
        (
            429,
            "retry-after: 0\r\n".into(),
            r#"{"code":"rate_limited","detail":"x"}"#.into(),
        )
    })
    .await;
    let args = <loadtest::Args as clap::Parser>::try_parse_from([
        "loadtest",
        "--base-url",
        &base,
        "--jwt-secret",
        "s",
        "--sale",
        "1",
        "--item",
        "1",
        "--concurrency",
        "2",
        "--requests",
        "4",
        "--retry-on",
        "429",
    ])
    .unwrap();
    let s = loadtest::run(args, false).await.unwrap();
    assert_eq!(s.outcomes.rate_limited, 4);
    assert_eq!(
        (s.retries.retries, s.retries.gave_up),
        (16, 4),
        "{}",
        s.render()
    );
}
