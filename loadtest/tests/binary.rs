//! The `loadtest` binary and library against a stub HTTP server (no seckill needed): live
//! lines, Ctrl-C, exit codes, and retries that wait for Retry-After and keep their idempotency
//! key.

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

/// Buys of item 1 of sale 1 from the stub at `base`, with the `extra` arguments.
fn buy_args(base: &str, extra: &[&str]) -> loadtest::Args {
    let mut all = vec![
        "loadtest",
        "--base-url",
        base,
        "--jwt-secret",
        "s",
        "--sale",
        "1",
        "--item",
        "1",
    ];
    all.extend_from_slice(extra);
    <loadtest::Args as clap::Parser>::try_parse_from(all).unwrap()
}

/// Per idempotency key: when the stub answered each attempt.
type Attempts = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// A stub whose first answer to each key is 503 `unconfirmed` with `Retry-After: 1`, and every
/// later one the order again; it notes when it answered each attempt.
async fn unconfirmed_once(seen: Attempts) -> String {
    stub(move |_, headers| {
        let Some(key) = headers.get("idempotency-key") else {
            return (422, String::new(), r#"{"code":"invalid_field"}"#.into());
        };
        let mut seen = seen.lock().unwrap();
        let keys = seen.len();
        let attempts = seen.entry(key.clone()).or_default();
        attempts.push(Instant::now());
        if attempts.len() == 1 {
            (
                503,
                "retry-after: 1\r\n".into(),
                r#"{"code":"unconfirmed","detail":"x"}"#.into(),
            )
        } else {
            let id = format!("00000000-0000-7000-8000-{keys:012}");
            (
                202,
                "idempotent-replayed: true\r\n".into(),
                format!(r#"{{"order_id":"{id}","status":"reserved"}}"#),
            )
        }
    })
    .await
}

#[tokio::test]
async fn retries_wait_for_retry_after_and_keep_their_idempotency_key() {
    let seen: Attempts = Arc::default();
    let base = unconfirmed_once(seen.clone()).await;
    let args = buy_args(
        &base,
        &[
            "--users",
            "10",
            "--concurrency",
            "6",
            "--requests",
            "12",
            "--idempotency-keys",
            "--retry-on",
            "503,429",
            "--no-progress",
        ],
    );
    let s = loadtest::run(args, false).await.unwrap();
    assert_eq!(
        (s.requests, s.outcomes.reserved),
        (12, 12),
        "{}",
        s.render()
    );
    assert_eq!(s.retries.retries, 12);
    assert_eq!(s.retries.by_status.get(&503), Some(&12));
    assert_eq!((s.retries.replayed, s.retries.gave_up), (12, 0));
    assert_eq!(
        s.unknown_fate, 12,
        "every unconfirmed answer left its buy's fate open"
    );
    assert!(
        s.render()
            .contains("retries     12 (503: 12), 12 answers replayed")
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 12, "a fresh key per buy");
    for (key, at) in seen.iter() {
        assert_eq!(at.len(), 2, "{key} sent twice");
        // The 503 left the stub before the client read it, so a client that waits the
        // Retry-After second sends the retry at least a second after it: a lower bound only.
        let gap = at[1] - at[0];
        assert!(
            gap >= Duration::from_secs(1),
            "{key} was retried {gap:?} after its 503 said Retry-After: 1"
        );
    }
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
    let args = buy_args(
        &base,
        &[
            "--users",
            "4",
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--retry-on",
            "429",
        ],
    );
    let s = loadtest::run(args, false).await.unwrap();
    assert_eq!(s.outcomes.rate_limited, 4);
    assert_eq!(
        (s.retries.retries, s.retries.gave_up),
        (16, 4),
        "{}",
        s.render()
    );
}
