//! The crowd's figures in words, one block after another.

use std::fmt::Write;

use super::report::{CrowdReport, PreQueue};

impl CrowdReport {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.head(&mut s);
        self.queue(&mut s);
        self.requests(&mut s);
        if let Some(w) = &self.sellout {
            let _ = writeln!(
                s,
                "after sell-out  sold out at {:.0} ms; {} told sold out, waited max {:.0} ms, p99 {:.0} ms, {} over 2 s",
                w.sellout_at_ms, w.users, w.max_ms, w.p99_ms, w.over_2s
            );
        }
        let _ = writeln!(
            s,
            "no answer   {} requests ({:.3}%){}",
            self.transport_failures,
            self.transport_failure_share * 100.0,
            if self.passed { "" } else { ": over 1%, FAILED" }
        );
        if self.interrupted {
            let _ = writeln!(s, "interrupted: the figures cover what ran until then");
        }
        s
    }

    /// What was hit, by whom, and how the visits ended.
    fn head(&self, s: &mut String) {
        let o = &self.outcomes;
        let _ = writeln!(
            s,
            "target      {} (queued sale {} item {})",
            self.base_url, self.sale_id, self.item_id
        );
        let _ = writeln!(
            s,
            "crowd       {} users ({} before the start, {} after) over {} connections, {:.1} s",
            self.users,
            self.pre_queue_users,
            self.post_start_users,
            self.connections,
            self.elapsed_secs
        );
        let _ = writeln!(
            s,
            "outcomes    reserved {}  sold_out {}  expired {}  failed {}  unfinished {}",
            o.reserved, o.sold_out, o.expired, o.failed, o.unfinished
        );
        for (why, n) in &o.refused {
            let _ = writeln!(s, "  refused   {why}: {n}");
        }
        let _ = writeln!(s, "units sold  {}", self.units_sold);
    }

    /// Queue times, fairness, the draw.
    fn queue(&self, s: &mut String) {
        match &self.queue_time {
            Some(q) => {
                let _ = writeln!(
                    s,
                    "queue time  join → admitted, {} users: p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
                    q.count, q.p50_ms, q.p90_ms, q.p99_ms, q.max_ms
                );
            }
            None => {
                let _ = writeln!(s, "queue time  nobody admitted");
            }
        }
        if let Some(f) = &self.fairness {
            let _ = writeln!(
                s,
                "fairness    after the start, {} users: Kendall tau (join order vs admission order) {:.4}",
                f.users, f.kendall_tau
            );
        }
        if let Some(p) = &self.pre_queue {
            pre_queue(s, p);
        }
    }

    /// Requests per unit sold and per user, queued and open.
    fn requests(&self, s: &mut String) {
        let r = &self.requests;
        let _ = writeln!(
            s,
            "requests    queued: {} (challenge {}  join {}  poll {}  buy {}), {} per unit sold, {:.2} per user",
            self.requests_total,
            r.challenge,
            r.join,
            r.poll,
            r.buy,
            per(self.requests_per_unit_sold),
            self.requests_per_user
        );
        if let Some(o) = &self.open {
            let _ = writeln!(
                s,
                "            open (sale {}): {} buys, {} sold, {} per unit sold, {:.2} per user; sold_out {}  refused {}  failed {}  unfinished {}, {:.1} s",
                o.sale_id,
                o.requests,
                o.units_sold,
                per(o.requests_per_unit_sold),
                o.requests_per_user,
                o.sold_out,
                o.refused,
                o.failed,
                o.unfinished,
                o.elapsed_secs
            );
            let _ = writeln!(
                s,
                "            open / queued requests per unit sold: {}",
                per(self.open_to_queue_ratio)
            );
        }
    }
}

/// The draw's randomness.
fn pre_queue(s: &mut String, p: &PreQueue) {
    let chi = p
        .chi_square
        .as_ref()
        .map_or("chi-square: too few users".into(), |c| {
            format!(
                "chi-square of deciles {:.1} (dof {}, p {:.4})",
                c.statistic, c.dof, c.p_value
            )
        });
    let verdict = if p.uniform { "yes" } else { "no" };
    let (n, with, tau, z) = (p.users, p.joined_with_position, p.kendall_tau, p.z_score);
    let _ = writeln!(
        s,
        "pre-queue   {n} users ({with} joined with a position already): tau {tau:.4}, z {z:.2}, {chi}; uniform: {verdict}"
    );
}

/// A ratio with two decimals, or `-` when there is none.
fn per(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}
