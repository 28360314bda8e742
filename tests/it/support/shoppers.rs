//! A real client for fault tests: many buyers hammer one item through every fault, retrying
//! what a real client would retry, and record every order id they were told is reserved.
//!
//! Buyers are drawn from a pool of users, so some hit their limit (the test can check nobody
//! ends above it). A 429 is waited out briefly; a 503, a 5xx or a connection error (the
//! service is restarting) a little longer; a buyer stops at the first `sold_out`.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use seckill::buy::identify::mint_token;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{JWT_SECRET, eventually};

/// What the buyers saw.
#[derive(Default)]
struct Seen {
    confirmed: Mutex<HashSet<String>>,
    /// Answers by status and code (`202`, `409 limit_exceeded`, `conn`...).
    answers: Mutex<BTreeMap<String, u64>>,
    sold_out: AtomicBool,
    requests: AtomicUsize,
    /// When the last 202 and the first `sold_out` arrived.
    last_confirmed_at: Mutex<Option<Instant>>,
    first_sold_out_at: Mutex<Option<Instant>>,
}

/// Buyers running against one item.
pub struct Shoppers {
    seen: Arc<Seen>,
    tasks: Vec<JoinHandle<()>>,
}

impl Shoppers {
    /// Starts `workers` buyers on `sale`/`item` at `base`, as users `u0..users`.
    pub fn start(base: &str, sale: u64, item: u64, workers: usize, users: u64) -> Self {
        let seen = Arc::new(Seen::default());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("{base}/api/v1/sales/{sale}/items/{item}/orders");
        let tasks = (0..workers)
            .map(|w| {
                let (http, url, seen) = (http.clone(), url.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut n = w as u64;
                    while !seen.sold_out.load(Ordering::Relaxed) {
                        n = n
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let user = format!("u{}", (n >> 33) % users);
                        let token = mint_token(&JWT_SECRET, &user, 600).unwrap();
                        seen.requests.fetch_add(1, Ordering::Relaxed);
                        let pause = match http.post(&url).bearer_auth(token).send().await {
                            Ok(r) => {
                                let status = r.status();
                                let body: Value = r.json().await.unwrap_or(Value::Null);
                                let code = body["code"].as_str().unwrap_or("").to_string();
                                seen.count(format!("{} {code}", status.as_u16()));
                                match status {
                                    StatusCode::ACCEPTED => {
                                        let id = body["order_id"].as_str().unwrap().to_string();
                                        seen.confirmed.lock().unwrap().insert(id);
                                        *seen.last_confirmed_at.lock().unwrap() =
                                            Some(Instant::now());
                                        0
                                    }
                                    StatusCode::CONFLICT if code == "sold_out" => {
                                        seen.first_sold_out_at
                                            .lock()
                                            .unwrap()
                                            .get_or_insert_with(Instant::now);
                                        seen.sold_out.store(true, Ordering::Relaxed);
                                        0
                                    }
                                    StatusCode::TOO_MANY_REQUESTS => 10 + n % 30,
                                    s if s.is_server_error() => 100,
                                    _ => 0,
                                }
                            }
                            Err(_) => {
                                seen.count("conn".into());
                                100
                            }
                        };
                        if pause > 0 {
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                    }
                })
            })
            .collect();
        Self { seen, tasks }
    }

    /// Orders confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.seen.confirmed.lock().unwrap().len()
    }

    /// Waits until at least `n` orders were confirmed.
    pub async fn wait_confirmed(&self, n: usize, timeout: Duration) {
        eventually(timeout, || {
            let have = self.confirmed();
            async move { (have >= n).then_some(()) }
        })
        .await;
    }

    /// How long after the last 202 the first `sold_out` came (zero when it came first).
    pub fn sold_out_lag(&self) -> Option<Duration> {
        let last = (*self.seen.last_confirmed_at.lock().unwrap())?;
        let first = (*self.seen.first_sold_out_at.lock().unwrap())?;
        Some(first.saturating_duration_since(last))
    }

    /// Waits for a buyer to be told `sold_out`, then for every buyer to stop; returns the
    /// confirmed order ids and the answers seen.
    pub async fn finish_at_sell_out(self, timeout: Duration) -> (HashSet<String>, String) {
        let seen = self.seen.clone();
        eventually(timeout, || {
            let done = seen.sold_out.load(Ordering::Relaxed);
            async move { done.then_some(()) }
        })
        .await;
        for t in self.tasks {
            t.await.unwrap();
        }
        let answers = format!("{:?}", self.seen.answers.lock().unwrap());
        (self.seen.confirmed.lock().unwrap().clone(), answers)
    }

    /// [`Shoppers::finish_at_sell_out`], with [`Shoppers::sold_out_lag`] measured at the end.
    pub async fn finish_timed(self, timeout: Duration) -> (HashSet<String>, String, Duration) {
        let seen = self.seen.clone();
        let (confirmed, answers) = self.finish_at_sell_out(timeout).await;
        let lag = Shoppers {
            seen,
            tasks: Vec::new(),
        }
        .sold_out_lag()
        .expect("a 202 and a sold_out were seen");
        (confirmed, answers, lag)
    }
}

impl Shoppers {
    /// Stops every buyer (after its request in flight) and returns the confirmed order ids.
    pub async fn stop(self) -> HashSet<String> {
        self.seen.sold_out.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.seen.confirmed.lock().unwrap().clone()
    }
}

impl Seen {
    fn count(&self, key: String) {
        *self.answers.lock().unwrap().entry(key).or_insert(0) += 1;
    }
}
