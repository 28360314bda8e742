//! A `seckill` child process reached over HTTP, and buyers that stampede it until it goes away.

use std::{path::PathBuf, sync::Arc, time::Duration};

use reqwest::StatusCode;
use seckill::{buy::identify::mint_token, config::Settings};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{
    ADMIN_TOKEN, JWT_SECRET, STACK, eventually, fixed_ports, live_sale_body, metrics_at,
    sale_and_item, send, spawn_process, test_settings, token, write_config,
};

/// A `seckill` child process, reached over HTTP.
pub struct Remote {
    pub http: reqwest::Client,
    pub base: String,
    /// Its admin listener.
    pub admin_base: String,
}

impl Remote {
    /// The process listening on `settings.http.addr` (and `settings.admin_addr`).
    pub fn at(settings: &Settings) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", settings.http.addr),
            admin_base: format!("http://{}", settings.admin_addr),
        }
    }

    /// A buy of one unit as `user`; returns the answer's body.
    pub async fn buy_as(&self, user: &str, sale: u64, item: u64) -> Value {
        let req = self
            .http
            .post(self.buy_url(sale, item))
            .bearer_auth(token(user));
        send(req).await.json().await.unwrap()
    }

    /// Its `/metrics` (on the HTTP address for a stand-alone consumer), as text; `None` while
    /// it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        metrics_at(&self.http, &self.base).await
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        eventually(Duration::from_secs(60), || async move {
            match self.http.get(format!("{}/readyz", self.base)).send().await {
                Ok(r) if r.status() == StatusCode::OK => Some(()),
                _ => None,
            }
        })
        .await;
    }

    /// Creates a live one-item sale through the admin API; returns (sale, item).
    pub async fn create_live_sale(&self, stock: i64, per_user_limit: i64) -> (u64, u64) {
        let r = self
            .http
            .post(format!("{}/admin/v1/sales", self.admin_base))
            .bearer_auth(&*ADMIN_TOKEN)
            .json(&live_sale_body(stock, per_user_limit))
            .send()
            .await
            .unwrap();
        let status = r.status();
        sale_and_item(status, &r.json().await.unwrap())
    }

    /// Starts `workers` buyers that buy `item` as ever-new users until the service stops
    /// answering (connection refused, or a 5xx while it shuts down). Every order confirmed
    /// with a 202 is recorded in the returned set.
    pub fn stampede(&self, sale: u64, item: u64, workers: usize) -> Stampede {
        let confirmed = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let tasks = (0..workers)
            .map(|w| {
                let (http, url, confirmed) = (
                    self.http.clone(),
                    self.buy_url(sale, item),
                    confirmed.clone(),
                );
                tokio::spawn(async move {
                    for i in 0.. {
                        let token = mint_token(&JWT_SECRET, &format!("s{w}-{i}"), 600).unwrap();
                        match http.post(&url).bearer_auth(token).send().await {
                            Ok(r) if r.status() == StatusCode::ACCEPTED => {
                                let body: Value = r.json().await.unwrap();
                                let id = body["order_id"].as_str().unwrap().to_string();
                                confirmed.lock().unwrap().insert(id);
                            }
                            Ok(r) if r.status().is_server_error() => break,
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Stampede { confirmed, tasks }
    }

    /// A live sale of 100,000 units with `workers` buyers stampeding it, once `confirmed`
    /// reservations were confirmed: (sale, item, buyers).
    pub async fn busy_sale(&self, workers: usize, confirmed: usize) -> (u64, u64, Stampede) {
        let (sale, item) = self.create_live_sale(100_000, 1).await;
        let stampede = self.stampede(sale, item, workers);
        stampede.confirmed_at_least(confirmed).await;
        (sale, item, stampede)
    }

    /// The buy URL of an item.
    pub fn buy_url(&self, sale: u64, item: u64) -> String {
        format!("{}/api/v1/sales/{sale}/items/{item}/orders", self.base)
    }
}

/// Settings for an isolated app on the stack, with fixed ports, written to a config file for a
/// child process; and the [`Remote`] that reaches it.
pub async fn child_on_stack() -> (Settings, PathBuf, Remote) {
    let mut settings = test_settings(&STACK.kafka_brokers).await;
    fixed_ports(&mut settings);
    let config = write_config(&settings);
    let remote = Remote::at(&settings);
    (settings, config, remote)
}

/// `seckill <command>` started as a child process on the stack (see [`child_on_stack`]), once
/// it is ready: its settings, config file, [`Remote`] and process.
pub async fn ready_child(command: &str) -> (Settings, PathBuf, Remote, std::process::Child) {
    let (settings, config, remote) = child_on_stack().await;
    let child = spawn_process(command, &config);
    remote.wait_ready().await;
    (settings, config, remote, child)
}

/// Buyers running against a [`Remote`].
pub struct Stampede {
    confirmed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Stampede {
    /// Waits until at least `n` reservations were confirmed.
    pub async fn confirmed_at_least(&self, n: usize) {
        eventually(Duration::from_secs(60), || {
            let have = self.confirmed.lock().unwrap().len();
            async move { (have >= n).then_some(()) }
        })
        .await;
    }

    /// Waits for the buyers to stop (the service went away) and returns what was confirmed.
    pub async fn finish(self) -> std::collections::HashSet<String> {
        for t in self.tasks {
            t.await.unwrap();
        }
        self.confirmed.lock().unwrap().clone()
    }
}
