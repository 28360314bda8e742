//! Schemathesis fuzzes the running service against both listeners' documents as an outside
//! client would: every check, its default generation and codec, no per-operation expected
//! statuses, a fixed seed. The only failures let through are those
//! deploy/local/schemathesis_hooks.py names, each checked against its request: a 422 for a
//! documented rule JSON Schema cannot state, and a reconciliation that outlives the request
//! timeout (a known limit of large sales). It follows the documents' links, so created sales
//! are bought and their orders looked up; the JUnit and NDJSON reports show what was reached.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    response::Response,
};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, JWT_SECRET, TestApp, spawn_with, test_settings};

/// Where each request goes, and the document the fuzzer reads.
#[derive(Clone)]
struct Proxy {
    public: String,
    admin: String,
    admin_paths: Vec<String>,
    document: String,
}

/// The two listeners' documents as one, for one fuzzer run: the admin document's paths carry
/// the admin listener as their server. One thing neither document can say, since each names
/// only its own listener's operations, is that a sale created on the admin listener is bought on
/// the buyers'; the run adds that as links from a created sale to its page and to its first
/// item's buy route (for as many units as one buyer may hold).
fn fuzzed_document(public: &Value, admin: &Value) -> Value {
    let mut doc = public.clone();
    for (path, item) in admin["paths"].as_object().unwrap() {
        if doc["paths"].get(path).is_none() {
            let mut item = item.clone();
            item["servers"] = admin["servers"].clone();
            doc["paths"][path] = item;
        }
    }
    for section in ["schemas", "securitySchemes"] {
        for (name, value) in admin["components"][section].as_object().unwrap() {
            let mine = &mut doc["components"][section][name];
            assert!(
                mine.is_null() || mine == value,
                "{section} {name} differs between the documents"
            );
            *mine = value.clone();
        }
    }
    let mut tags = doc["tags"].as_array().unwrap().clone();
    for tag in admin["tags"].as_array().unwrap() {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    doc["tags"] = Value::Array(tags);
    let links = &mut doc["paths"]["/admin/v1/sales"]["post"]["responses"]["201"]["links"];
    links["BuyFirstItem"] = json!({"operationId": "create_order", "parameters": {
        "sale_id": "$response.body#/id", "item_id": "$response.body#/items/0/id"},
        "requestBody": {"quantity": "$response.body#/items/0/per_user_limit"}});
    links["SalePage"] =
        json!({"operationId": "sale_page", "parameters": {"sale_id": "$response.body#/id"}});
    doc
}

/// One base URL for the fuzzer: the combined document at `/openapi.json`, admin paths to the
/// admin listener, the rest to the buyers' (answers stream through, so the event stream works).
async fn proxy(State(proxy): State<Proxy>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/openapi.json" {
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(proxy.document.clone()))
            .unwrap();
    }
    let base = if proxy.admin_paths.iter().any(|p| path.starts_with(p)) {
        &proxy.admin
    } else {
        &proxy.public
    };
    let url = format!(
        "{base}{}",
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let client = reqwest::Client::new();
    let mut forward = client.request(req.method().clone(), url);
    for (name, value) in req.headers() {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let answer = match forward.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(599)
                .body(Body::from(format!("proxy: {e}")))
                .unwrap();
        }
    };
    let mut out = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        out = out.header(name, value);
    }
    out.body(Body::from_stream(answer.bytes_stream())).unwrap()
}

async fn serve_proxy(app: &TestApp) -> String {
    let get = |url: String| async move {
        reqwest::get(url)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let public = get(app.url("/openapi.json")).await;
    let admin = get(app.admin_url("/openapi.json")).await;
    let admin_paths = ["/admin/", "/console", "/docs", "/metrics"]
        .map(String::from)
        .to_vec();
    for path in admin["paths"].as_object().unwrap().keys() {
        assert!(
            public["paths"].get(path).is_some() || admin_paths.iter().any(|p| path.starts_with(p)),
            "the proxy does not route {path}"
        );
    }
    let state = Proxy {
        public: app.base.clone(),
        admin: app.admin_base.clone(),
        admin_paths,
        document: fuzzed_document(&public, &admin).to_string(),
    };
    let router = axum::Router::new().fallback(proxy).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The operations of schemathesis's JUnit report (one `<testcase>` each) and whether each
/// passed: no `<failure>`, `<error>` or `<skipped>` inside.
fn junit_operations(xml: &str) -> BTreeMap<String, bool> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    };
    xml.split("<testcase ")
        .skip(1)
        .map(|element| {
            let name = element.split("name=\"").nth(1).unwrap().split('"').next();
            let head = &element[..element.find('>').unwrap()];
            let inner = match element.find("</testcase>") {
                Some(end) if !head.ends_with('/') => &element[..end],
                _ => "",
            };
            let clean = !["<failure", "<error", "<skipped"]
                .iter()
                .any(|t| inner.contains(t));
            (unescape(name.unwrap()), clean)
        })
        .collect()
}

/// What the NDJSON report says was sent: test cases per operation, their answers, and the
/// answers to those reached through a link, per operation and link.
#[derive(Debug, Default)]
struct Sent {
    cases: BTreeMap<String, usize>,
    /// (operation, status) -> cases.
    answered: BTreeMap<(String, u64), usize>,
    /// (operation, link, status) -> cases.
    linked: BTreeMap<(String, String, u64), usize>,
}

fn sent(ndjson: &str) -> Sent {
    let mut out = Sent::default();
    for line in ndjson.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let recorder = &event["ScenarioFinished"]["recorder"];
        for (id, node) in recorder["cases"].as_object().into_iter().flatten() {
            let case = &node["value"];
            let label = format!(
                "{} {}",
                case["method"].as_str().unwrap(),
                case["path"].as_str().unwrap()
            );
            *out.cases.entry(label.clone()).or_default() += 1;
            let status = recorder["interactions"][id]["response"]["status_code"].as_u64();
            if let Some(status) = status {
                *out.answered.entry((label.clone(), status)).or_default() += 1;
            }
            if let (Some(link), Some(status)) = (node["transition"]["id"].as_str(), status) {
                let link = link.split(" -> ").nth(1).unwrap_or(link).to_string();
                *out.linked.entry((label, link, status)).or_default() += 1;
            }
        }
    }
    out
}

fn schemathesis() -> String {
    let runner = std::env::var("STACK_SCHEMATHESIS").unwrap_or_else(|_| {
        format!(
            "{}/.local/state/seckill/stack/venv/bin/schemathesis",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    assert!(
        Path::new(&runner).exists(),
        "schemathesis is not installed at {runner}: run deploy/local/stack.sh install"
    );
    runner
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/schemathesis");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Schemathesis against the proxy at `base` as a buyer with a token of its own, its
/// reports in `out_dir`; panics with its output unless it passed.
async fn run_schemathesis(runner: &str, base: &str, out_dir: &Path) {
    let buyer = seckill::buy::identify::mint_token(&JWT_SECRET, "schemathesis", 3_600).unwrap();
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local");
    let config = local.join("schemathesis.toml");
    let hooks = local.join("schemathesis_hooks.py");
    let run = tokio::process::Command::new(runner)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base, "--checks", "all", "--seed", "1"])
        // Fuzzing and stateful testing repeat until the budget is spent.
        .args([
            "--max-examples",
            "25",
            "--max-time",
            "110",
            "--workers",
            "2",
        ])
        .args(["--report", "junit,ndjson", "--report-junit-path"])
        .arg(out_dir.join("junit.xml"))
        .arg("--report-ndjson-path")
        .arg(out_dir.join("events.ndjson"))
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .env("SCHEMATHESIS_ADMIN_TOKEN", &*ADMIN_TOKEN)
        .env("SCHEMATHESIS_BUYER_JWT", &buyer)
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finished within 5 minutes")
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(out_dir.join("output.txt"), &text).unwrap();
    assert!(out.status.success(), "schemathesis failed:\n{text}");
}

/// Every operation of both documents was tested and passed (schemathesis does not test the
/// document's own route), each with a real number of cases.
fn every_operation_was_tested(tested: &BTreeMap<String, bool>, sent: &Sent, summary: &str) {
    let mut operations = 0;
    for (_, doc) in super::documents() {
        for (method, path, _) in super::operations(&doc) {
            let label = format!("{} {path}", method.to_uppercase());
            if label == "GET /openapi.json" {
                continue;
            }
            operations += 1;
            assert_eq!(tested.get(&label), Some(&true), "{label}:\n{summary}");
            let cases = sent.cases.get(&label).copied().unwrap_or(0);
            assert!(cases >= 3, "{label}: {cases} cases\n{summary}");
        }
    }
    assert!(operations >= 20, "{operations}");
    assert_eq!(tested.get("Stateful tests"), Some(&true), "{summary}");
    let total: usize = sent.cases.values().sum();
    assert!(total >= 1_000, "{total} cases\n{summary}");
}

/// Real orders: bought, looked up, and cancelled or found closed (a payment window may be as
/// short as 5 s); and through the links: from a created sale to its item's buy route, and from
/// listed orders to the order routes, which found orders there.
fn real_orders_were_bought_and_reached_through_links(sent: &Sent, summary: &str) {
    let buy = "POST /api/v1/sales/{sale_id}/items/{item_id}/orders";
    let get = "GET /api/v1/orders/{order_id}";
    let cancel = "POST /api/v1/orders/{order_id}/cancel";
    let answers: [(&str, &[u64]); 3] = [(buy, &[202]), (get, &[200]), (cancel, &[200, 409])];
    for (op, statuses) in answers {
        let n: usize = statuses
            .iter()
            .filter_map(|s| sent.answered.get(&(op.to_string(), *s)))
            .sum();
        assert!(n >= 1, "{op} never answered {statuses:?}\n{summary}");
    }
    let linked = |operation: &str, ok: &dyn Fn(&str, u64) -> bool| -> usize {
        sent.linked
            .iter()
            .filter(|((op, link, status), _)| op == operation && ok(link, *status))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(
        linked(buy, &|link, _| link.ends_with("BuyFirstItem")) >= 1,
        "the buy route was not reached from a created sale\n{summary}"
    );
    for op in [get, cancel] {
        assert!(
            linked(op, &|_, _| true) >= 1,
            "{op} not reached through a link\n{summary}"
        );
    }
    let found: usize = [get, cancel]
        .iter()
        .map(|op| {
            linked(op, &|_, status| {
                (200..300).contains(&status) || status == 409
            })
        })
        .sum();
    assert!(found >= 1, "no order found through a link\n{summary}");
}

#[tokio::test]
async fn schemathesis_finds_no_disagreement_between_the_documents_and_the_service() {
    let runner = schemathesis();
    let mut settings = test_settings("embedded").await;
    // The fuzzer is one client: no buckets in its way.
    settings.limits.per_user_per_sec = 0;
    settings.limits.global_per_sec = 0;
    let app = spawn_with(settings).await;
    let base = serve_proxy(&app).await;
    let out_dir = output_dir();
    run_schemathesis(&runner, &base, &out_dir).await;
    let report = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap();
    let tested = junit_operations(&report("junit.xml"));
    let sent = sent(&report("events.ndjson"));
    let summary = format!("{tested:#?}\n{sent:#?}");
    every_operation_was_tested(&tested, &sent, &summary);
    real_orders_were_bought_and_reached_through_links(&sent, &summary);
}
