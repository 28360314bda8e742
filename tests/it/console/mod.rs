//! The operator console in a real browser (headless Chromium): log in, create a sale through the
//! form (a validation error shown on its field first), drive buys at it with the loadtest, watch
//! the counters reach sold out and the charts draw what the page received, reconcile clean,
//! find a deleted order named by the failing check, re-send it with Repair, and rebuild lost
//! Redis state with Prewarm. Screenshots go to target/test-output/console/.

mod actions;
mod charts;
mod queue;
mod stream;

use std::{path::PathBuf, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    browser::Browser,
    support::{ADMIN_TOKEN, JWT_SECRET, STACK, TestApp, spawn_with, test_settings},
};

const STOCK: u64 = 150;

/// `document.querySelector(selector).textContent`, as a JavaScript expression.
fn text_of(selector: &str) -> String {
    format!("(document.querySelector('{selector}') || {{}}).textContent")
}

/// The `data-testid` selector of an item's figure (`remaining`, `persisted`, …).
fn figure(key: &str, item: u64) -> String {
    format!("[data-testid=\"item-{key}-{item}\"]")
}

/// A service, a browser on its console, and the sale the test creates there.
struct Console {
    app: TestApp,
    b: Browser,
    out: PathBuf,
    sale: u64,
    item: u64,
}

#[tokio::test]
async fn an_operator_creates_watches_and_reconciles_a_sale_in_the_console() {
    let mut c = Console::open().await;
    c.log_in().await;
    c.create_sale().await;
    c.buy_out().await;
    charts::draw_what_the_page_received(&mut c).await;
    c.reconcile_clean().await;
    let gone = c.a_deleted_order_is_named().await;
    c.repair(&gone).await;
    c.prewarm_rebuilds_lost_state().await;
    eprintln!("console screenshots in {}", c.out.display());
}

impl Console {
    /// The console is the binary's own, on the admin listener only, and loads nothing else.
    async fn open() -> Self {
        let mut settings = test_settings(&STACK.kafka_brokers).await;
        settings.limits.per_user_per_sec = 0;
        let app = spawn_with(settings).await;
        let public = app.get("/console").await;
        assert_eq!(public.status(), StatusCode::NOT_FOUND);
        let page = app.get_admin("/console").await;
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-output/console");
        std::fs::create_dir_all(&out).unwrap();
        let b = Browser::start().await;
        Self {
            app,
            b,
            out,
            sale: 0,
            item: 0,
        }
    }

    async fn wait(&mut self, condition: &str, secs: u64) {
        self.b.wait_for(condition, Duration::from_secs(secs)).await;
    }

    async fn text(&mut self, selector: &str) -> String {
        let v = self.b.eval(&text_of(selector)).await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&mut self, name: &str) {
        self.b.screenshot(&self.out.join(name)).await;
    }

    /// A wrong token is refused; the right one opens the sales list and stays in the tab.
    async fn log_in(&mut self) {
        self.b.goto(&self.app.admin_url("/console")).await;
        self.wait("document.querySelector('#login-form')", 10).await;
        let submit = |token: &str| {
            format!(
                "document.querySelector('#token').value = '{token}'; document.querySelector('#login-form').requestSubmit()"
            )
        };
        self.b.eval(&submit("not-the-token")).await;
        self.wait(
            &format!("{}.includes('not this service')", text_of("#login-error")),
            10,
        )
        .await;
        self.b.eval(&submit(&ADMIN_TOKEN)).await;
        self.wait("document.querySelector('#create-form')", 10)
            .await;
        assert_eq!(
            self.b
                .eval("sessionStorage.getItem('seckill.token') !== null && document.cookie === ''")
                .await,
            Value::Bool(true)
        );
    }

    /// A bad stock is shown on its field and creates nothing; a good form opens the sale.
    async fn create_sale(&mut self) {
        let fill = |stock: &str| {
            format!(
                "(() => {{ const f = document.querySelector('#create-form');
                   f.name.value = 'Browser sale';
                   const pad = (n) => String(n).padStart(2, '0');
                   const at = (d) => `${{d.getFullYear()}}-${{pad(d.getMonth() + 1)}}-${{pad(d.getDate())}}T${{pad(d.getHours())}}:${{pad(d.getMinutes())}}:${{pad(d.getSeconds())}}`;
                   f.starts_at.value = at(new Date(Date.now() + 2000));
                   f.ends_at.value = at(new Date(Date.now() + 3600 * 1000));
                   f.querySelector('[data-field=\"items[0].stock\"]').value = '{stock}';
                   f.querySelector('[data-field=\"items[0].per_user_limit\"]').value = '1';
                   f.requestSubmit(); }})()"
            )
        };
        self.b.eval(&fill("-5")).await;
        self.wait(
            "document.querySelector('[data-field=\"items[0].stock\"]').classList.contains('invalid')",
            10,
        )
        .await;
        let shown = self.text("#create-error").await;
        assert!(shown.contains("items[0].stock"), "{shown}");
        let (_, list) = self.app.admin_get("/admin/v1/sales").await;
        assert_eq!(list["total"], 0, "the refused form wrote nothing");
        self.screenshot("0-create-form-error.png").await;
        charts::record_snapshots(&mut self.b).await;
        self.b.eval(&fill(&STOCK.to_string())).await;
        self.wait("location.hash.startsWith('#/sales/')", 10).await;
        let sale = self.b.eval("location.hash.split('/')[2]").await;
        self.sale = sale.as_str().unwrap().parse().unwrap();
        self.wait("document.querySelector('[data-item]')", 15).await;
        let item = self
            .b
            .eval("document.querySelector('[data-item]').dataset.item")
            .await;
        self.item = item.as_str().unwrap().parse().unwrap();
        let remaining = self.text(&figure("remaining", self.item)).await;
        assert_eq!(remaining, STOCK.to_string());
    }

    /// The loadtest buys it out; the counters move to sold out and everything persisted.
    async fn buy_out(&mut self) {
        tokio::time::sleep(Duration::from_secs(2)).await; // the sale starts
        let (sale, item) = (self.sale.to_string(), self.item.to_string());
        let args = <loadtest::Args as clap::Parser>::try_parse_from([
            "loadtest",
            "--base-url",
            &self.app.base,
            "--admin-url",
            &self.app.admin_base,
            "--admin-token",
            &ADMIN_TOKEN,
            "--jwt-secret",
            &JWT_SECRET,
            "--no-progress",
            "--sale",
            &sale,
            "--item",
            &item,
            "--users",
            "1000",
            "--concurrency",
            "8",
            "--requests",
            "1200",
        ])
        .unwrap();
        let summary = loadtest::run(args, false).await.unwrap();
        assert_eq!(summary.outcomes.reserved, STOCK, "{summary:?}");
        let item = self.item;
        self.wait(
            &format!("{} === '0'", text_of(&figure("remaining", item))),
            30,
        )
        .await;
        let sold_out = text_of(&format!("[data-testid=\"sold-out-{item}\"]"));
        self.wait(&format!("{sold_out}.startsWith('sold out at')"), 30)
            .await;
        let persisted = text_of(&figure("persisted", item));
        self.wait(&format!("{persisted} === '{STOCK}'"), 60).await;
        self.screenshot("1-sold-out.png").await;
    }
}
