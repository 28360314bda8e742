//! A headless Chromium driven over the DevTools protocol: navigate, evaluate JavaScript in the
//! page, wait for a condition, answer a dialog, take screenshots. Just what the console test
//! needs.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// How Debian's `chromium` runs here: headless, without a sandbox, GPU or first-run page.
pub const HEADLESS: [&str; 5] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
];

pub struct Browser {
    child: std::process::Child,
    profile: PathBuf,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Starts Debian's `chromium` headless with a fresh profile and attaches to its page.
    pub async fn start() -> Self {
        let profile =
            std::env::temp_dir().join(format!("seckill-chromium-{}", crate::support::unique()));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = std::process::Command::new("chromium")
            .args(HEADLESS)
            .args(["--remote-debugging-port=0", "--window-size=1280,1600"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("chromium is installed (deploy/local/stack.sh install)");
        let stderr = child.stderr.take().unwrap();
        let port = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|l| {
                let rest = l.strip_prefix("DevTools listening on ws://127.0.0.1:")?;
                rest.split('/').next()?.parse::<u16>().ok()
            });
            // Keep draining, so chromium never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            port
        })
        .await
        .unwrap()
        .expect("chromium printed its DevTools address");
        let targets: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut browser = Self {
            child,
            profile,
            ws,
            next_id: 0,
        };
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    /// Sends a DevTools command and returns its result (events in between are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        loop {
            let v = self.next_frame(method).await;
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Sends a DevTools command without waiting; returns its id.
    async fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::Text(msg.into())).await.unwrap();
        id
    }

    /// The next message from chromium (an answer or an event).
    async fn next_frame(&mut self, waiting_for: &str) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{waiting_for}: no answer from chromium"))
                .expect("chromium closed the connection")
                .unwrap();
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Clicks `selector`, which must open a `confirm` dialog, and answers it as a user would
    /// (`accept`: OK, else Cancel); returns the dialog's message.
    pub async fn click_through_dialog(&mut self, selector: &str, accept: bool) -> String {
        let click = format!("document.querySelector('{selector}').click()");
        let id = self
            .send(
                "Runtime.evaluate",
                json!({ "expression": click, "returnByValue": true }),
            )
            .await;
        let mut message = None;
        loop {
            let v = self.next_frame(&click).await;
            if v["method"] == "Page.javascriptDialogOpening" {
                assert_eq!(v["params"]["type"], "confirm", "{v}");
                message = v["params"]["message"].as_str().map(str::to_string);
                self.send("Page.handleJavaScriptDialog", json!({ "accept": accept }))
                    .await;
            } else if v["id"] == id {
                assert!(
                    v.get("error").is_none() && v["result"].get("exceptionDetails").is_none(),
                    "{click}: {v}"
                );
                return message.unwrap_or_else(|| panic!("{selector} opened no dialog"));
            }
        }
    }

    /// Opens `url` and waits until its document has loaded.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true; panics with `describe`'s
    /// value after `timeout`.
    pub async fn wait_for(&mut self, condition: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.eval(&format!("!!({condition})")).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let body = self
                    .eval("document.body ? document.body.innerText.slice(0, 3000) : ''")
                    .await;
                panic!(
                    "timed out waiting for {condition}; the page shows:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a PNG of the whole page to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let png = self.capture(None).await;
        std::fs::write(path, png).unwrap();
    }

    /// A PNG of the page, or of the `[x, y, width, height]` region of it (CSS pixels from the
    /// document's top left).
    pub async fn capture(&mut self, region: Option<[f64; 4]>) -> Vec<u8> {
        let mut params = json!({ "format": "png", "captureBeyondViewport": true });
        if let Some([x, y, width, height]) = region {
            params["clip"] =
                json!({ "x": x, "y": y, "width": width, "height": height, "scale": 1 });
        }
        let r = self.call("Page.captureScreenshot", params).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
