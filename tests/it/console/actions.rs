//! The sale page's action buttons: Reconcile now, Repair (behind a confirm dialog) and Prewarm,
//! each checked on the page and in the stores.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::{Console, STOCK, figure, text_of};

impl Console {
    /// Clicks the button `id` (`reconcile`, `prewarm`...).
    async fn click(&mut self, id: &str) {
        let js = format!("document.querySelector('#{id}').click()");
        self.b.eval(&js).await;
    }

    /// Clicks Reconcile now and waits for the report panel to start with `verdict`.
    async fn reconcile(&mut self, verdict: &str) {
        self.click("reconcile").await;
        let status = text_of("[data-testid=report-status]");
        self.wait(&format!("{status}.startsWith('{verdict}')"), 30)
            .await;
    }

    /// Reconcile now: the panel shows the clean report and the history its row.
    pub(super) async fn reconcile_clean(&mut self) {
        self.reconcile("clean").await;
        assert_eq!(
            self.b
                .eval("document.querySelectorAll('[data-testid=check-failing]').length")
                .await,
            0
        );
        self.wait(
            "document.querySelectorAll('#history tbody tr').length >= 1",
            10,
        )
        .await;
        self.screenshot("2-clean-report.png").await;
    }

    /// An order row disappears behind the service's back: the failing check names it, and
    /// failing checks come first. Returns its id.
    pub(super) async fn a_deleted_order_is_named(&mut self) -> String {
        let row: Vec<u8> =
            sqlx::query_scalar("SELECT order_id FROM orders ORDER BY order_id LIMIT 1")
                .fetch_one(self.app.db())
                .await
                .unwrap();
        let gone = Uuid::from_slice(&row).unwrap().to_string();
        sqlx::query("DELETE FROM orders WHERE order_id = ?")
            .bind(&row)
            .execute(self.app.db())
            .await
            .unwrap();
        self.b
            .eval("document.querySelector('#reconcile').click()")
            .await;
        self.wait(
            &format!(
                "[...document.querySelectorAll('[data-testid=check-failing]')].some((c) => c.textContent.includes('{gone}'))"
            ),
            30,
        )
        .await;
        let verdict = self.text("[data-testid=report-status]").await;
        assert!(verdict.contains("failing"), "{verdict}");
        let first_check = self
            .b
            .eval("document.querySelector('#report .check').dataset.testid")
            .await;
        assert_eq!(first_check, "check-failing", "failing checks come first");
        self.screenshot("3-failing-check.png").await;
        gone
    }

    /// The status of order `id` in MySQL, if it has a row.
    async fn order_row(&self, id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM orders WHERE order_id = ?")
            .bind(Uuid::parse_str(id).unwrap())
            .fetch_optional(self.app.db())
            .await
            .unwrap()
    }

    /// Confirms Repair, waits until it says it re-sent `n` reservations; returns its output.
    async fn repair_re_sends(&mut self, n: usize) -> String {
        let status = text_of("#action-status");
        self.b.click_through_dialog("#repair", true).await;
        let done = format!("{status} === 'Repair re-sent {n} reservation(s).'");
        self.wait(&done, 30).await;
        self.text("#action-output").await
    }

    /// Repair asks first, and Cancel sends nothing. While the item's MySQL stock does not
    /// balance it re-sends nothing and says why; once the missing order is a lost Kafka message
    /// (its unit never left MySQL's stock) it re-sends it, and the consumer stores it again.
    pub(super) async fn repair(&mut self, gone: &str) {
        let before = self.text("#action-status").await;
        let asked = self.b.click_through_dialog("#repair", false).await;
        assert!(asked.contains("re-sends to Kafka"), "{asked}");
        let after = self.text("#action-status").await;
        assert_eq!(after, before, "Cancel started nothing");

        let output = self.repair_re_sends(0).await;
        let refused = format!(
            "left for a human: item {}: 1 ledger entries missing from MySQL, but its MySQL stock does not balance",
            self.item
        );
        assert!(output.contains(&refused), "{output}");
        assert_eq!(self.order_row(gone).await, None, "nothing was re-sent");

        sqlx::query("UPDATE sale_items SET stock = stock + 1 WHERE id = ?")
            .bind(self.item)
            .execute(self.app.db())
            .await
            .unwrap();
        let output = self.repair_re_sends(1).await;
        assert!(output.contains(&format!("re-sent {gone}")), "{output}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let stored = loop {
            if let Some(status) = self.order_row(gone).await {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the re-sent order {gone} never reached MySQL"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(stored, "pending_payment");
        let persisted = text_of(&figure("persisted", self.item));
        self.wait(&format!("{persisted} === '{STOCK}'"), 30).await;
        self.reconcile("clean").await;
        self.screenshot("4-repaired.png").await;
    }

    /// The item's Redis state is lost (as after a Redis restart without its data) and the page
    /// shows no remaining units; Prewarm rebuilds the state from MySQL, not afresh, so nothing
    /// is for sale again.
    pub(super) async fn prewarm_rebuilds_lost_state(&mut self) {
        let keys = self.app.item_keys(self.sale, self.item).await;
        let base = keys.stock.strip_suffix(":stock").unwrap();
        let mut conn = self.app.redis().get();
        let all: Vec<String> = conn.keys(format!("{base}:*")).await.unwrap();
        assert!(all.len() >= 3, "stock, meta and a ledger bucket: {all:?}");
        let _: () = conn.del(&all).await.unwrap();
        let remaining = text_of(&figure("remaining", self.item));
        self.wait(&format!("{remaining} === '–'"), 30).await;

        self.click("prewarm").await;
        let status = text_of("#action-status");
        self.wait(&format!("{status} === 'Prewarm done.'"), 60)
            .await;
        let output = self.text("#action-output").await;
        let report: Value = serde_json::from_str(&output).unwrap();
        assert_eq!(report["sale_id"], self.sale, "{report}");
        assert_eq!(report["items"][0]["item_id"], self.item, "{report}");
        assert_eq!(report["items"][0]["outcome"], "recovered", "{report}");
        assert_eq!(report["items"][0]["remaining"], 0, "{report}");
        let stock: Option<i64> = conn.get(&keys.stock).await.unwrap();
        assert_eq!(stock, Some(0), "rebuilt from MySQL, not warmed afresh");
        self.wait(&format!("{remaining} === '0'"), 30).await;
        let (status, body) = self.app.buy(self.sale, self.item, "late", 1, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "sold_out", "{body}");
        self.screenshot("5-prewarmed.png").await;
    }
}
