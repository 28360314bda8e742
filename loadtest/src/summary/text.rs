//! The summary in words, one block after another. The first four lines are stable (`target`,
//! `mode`, `requests`, `latency ms`): `deploy/local/bench.sh` picks lines 3 and 4.

use std::fmt::Write;

use super::{Schedule, Summary};
use crate::{
    args::{Endpoint, Mode},
    lifecycle::LifecycleReport,
    stats::Retries,
    threshold::ThresholdResult,
    verify::Verification,
};

impl Summary {
    /// The human-readable summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.head(&mut s);
        self.outcomes(&mut s);
        retries(&mut s, &self.retries);
        if let Some(sch) = &self.schedule {
            schedule(&mut s, sch);
        }
        thresholds(&mut s, &self.thresholds);
        if let Some(v) = &self.verification {
            verification(&mut s, v);
        }
        if let Some(l) = &self.lifecycle {
            lifecycle(&mut s, l);
        }
        if self.interrupted {
            let _ = writeln!(
                s,
                "interrupted after {:.1} s: the figures cover the requests answered until then",
                self.elapsed_secs
            );
        }
        s
    }

    /// What was hit, how, how much, and how fast (overall and per outcome).
    fn head(&self, s: &mut String) {
        let target = match (self.endpoint, self.sale_id, self.item_id) {
            (Endpoint::Buy, Some(sale), Some(item)) => format!("buy sale {sale} item {item}"),
            (Endpoint::SalePage, Some(sale), _) => format!("sale page {sale}"),
            (Endpoint::QueuePoll, Some(sale), _) => format!("queue polls of sale {sale}"),
            _ => "healthz".into(),
        };
        let mode = match self.mode {
            Mode::OpenLoop { rate, connections } => {
                format!("open loop, {rate} req/s offered over {connections} connections")
            }
            Mode::ClosedLoop { concurrency } => format!("closed loop, {concurrency} in flight"),
        };
        let _ = writeln!(s, "target      {} ({target})", self.base_url);
        let _ = writeln!(s, "mode        {mode}, {} users", self.users);
        let _ = writeln!(
            s,
            "requests    {} in {:.1} s = {:.0} req/s",
            self.requests, self.elapsed_secs, self.throughput_per_sec
        );
        let _ = writeln!(s, "latency ms  {}", self.latency.line());
        if self.latency_by_outcome.len() > 1 {
            for (kind, l) in self.latency_per_outcome() {
                let _ = writeln!(s, "  {kind:<15} {}  ({})", l.line(), l.count);
            }
        }
    }

    /// The counts by outcome, then the errors by cause with their hints.
    fn outcomes(&self, s: &mut String) {
        let o = &self.outcomes;
        let _ = writeln!(
            s,
            "outcomes    reserved {}  sold_out {}  limit_exceeded {}  rate_limited {}  errors {}  timeouts {}",
            o.reserved, o.sold_out, o.limit_exceeded, o.rate_limited, o.errors, o.timeouts
        );
        for (label, e) in first_labelled("errors by").zip(&self.errors) {
            let _ = write!(s, "{label:<12}{:<24} {:>8}", e.cause, e.count);
            match e.hint {
                Some(h) => {
                    let _ = writeln!(s, "  hint: {h}");
                }
                None => s.push('\n'),
            }
        }
    }
}

/// The `--retry-on` retries by status, when any were sent or replayed.
fn retries(s: &mut String, r: &Retries) {
    if r.retries == 0 && r.replayed == 0 {
        return;
    }
    let by: Vec<String> = r
        .by_status
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let _ = writeln!(
        s,
        "retries     {} ({}), {} answers replayed, {} buys still refused after the last attempt",
        r.retries,
        by.join(", "),
        r.replayed,
        r.gave_up
    );
}

/// How an open loop kept to its schedule.
fn schedule(s: &mut String, sch: &Schedule) {
    let _ = writeln!(
        s,
        "schedule    {} of {} started late ({:.1}%), up to {:.1} ms behind; none dropped",
        sch.late, sch.scheduled, sch.late_pct, sch.max_late_ms
    );
    if let Some(w) = &sch.warning {
        let _ = writeln!(s, "WARNING     {w}");
    }
}

/// Each `--threshold` with its verdict and the measured value.
fn thresholds(s: &mut String, thresholds: &[ThresholdResult]) {
    for (label, t) in first_labelled("thresholds").zip(thresholds) {
        let _ = writeln!(
            s,
            "{label:<12}{:<7}{} (measured {})",
            verdict(t.ok, "ok"),
            t.threshold,
            t.shown
        );
    }
}

/// The `--verify` verdict and its problems.
fn verification(s: &mut String, v: &Verification) {
    let _ = writeln!(
        s,
        "verify      {}: {} confirmed to this client, {} reservations, {} units persisted, stock {}, consumer {}",
        verdict(v.ok, "OK"),
        v.confirmed,
        v.reservations,
        v.persisted_units,
        v.stock,
        if v.drained { "drained" } else { "NOT drained" }
    );
    problems(s, &v.problems);
}

/// The `--pay-share` step: the orders by state and the stock back.
fn lifecycle(s: &mut String, l: &LifecycleReport) {
    let st = &l.states;
    let _ = writeln!(
        s,
        "lifecycle   {}: paid {}  expired {}  pending_payment {}  cancelled {}  rejected {}; stock back {} (MySQL), {} (Redis)",
        verdict(l.ok, "OK"),
        st["paid"],
        st["expired"],
        st["pending_payment"],
        st["cancelled"],
        st["rejected"],
        l.stock_mysql,
        l.stock_redis.map_or("-".to_string(), |n| n.to_string())
    );
    problems(s, &l.problems);
}

/// The labels of a block's rows: its name on the first, nothing on the others.
fn first_labelled(name: &'static str) -> impl Iterator<Item = &'static str> {
    std::iter::once(name).chain(std::iter::repeat(""))
}

/// `ok` (as the block spells it) or `FAILED`.
fn verdict(ok: bool, spelled: &'static str) -> &'static str {
    if ok { spelled } else { "FAILED" }
}

/// One line per problem, under its block.
fn problems(s: &mut String, problems: &[String]) {
    for p in problems {
        let _ = writeln!(s, "  problem: {p}");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{fixture, lifecycle::LifecycleReport, verify::Verification};

    #[test]
    fn the_first_four_lines_are_target_mode_requests_and_latency() {
        let text = fixture::summary().render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "target      http://127.0.0.1:8080 (buy sale 12 item 34)",
                "mode        open loop, 500 req/s offered over 16 connections, 1000 users",
                "requests    10 in 3.2 s = 3 req/s",
            ]
        );
        assert!(
            lines[3].starts_with("latency ms  p50 0.15  p90 12.01  p99 250.11"),
            "{text}"
        );
        assert!(lines[4].starts_with("  reserved        p50 0.09"), "{text}");
    }

    #[test]
    fn each_block_follows_in_its_place() {
        let mut s = fixture::summary();
        s.interrupted = true;
        s.thresholds = vec![crate::judge::judge(&"rps>1".parse().expect("parses"), &s)];
        s.verification = Some(Verification {
            ok: false,
            drained: false,
            problems: vec!["the consumer did not drain in time".into()],
            confirmed: 3,
            distinct_order_ids: Some(3),
            reservations: 3,
            persisted_units: 2,
            persisted_orders: 2,
            stock: 10,
        });
        s.lifecycle = Some(LifecycleReport {
            paid: 2,
            left_to_expire: 1,
            states: json!({"paid": 2, "expired": 1, "pending_payment": 0, "cancelled": 0,
                "rejected": 0}),
            stock_mysql: 8,
            stock_redis: None,
            ok: true,
            problems: Vec::new(),
            report: json!({}),
        });
        let text = s.render();
        let from_outcomes: Vec<&str> = text.lines().skip(7).collect();
        assert_eq!(
            from_outcomes,
            [
                "outcomes    reserved 3  sold_out 2  limit_exceeded 1  rate_limited 0  errors 2  timeouts 2",
                "errors by   401 unauthorized                2  hint: tokens rejected: does --jwt-secret match SECKILL_JWT_SECRET?",
                "            timeout                         2  hint: no answer within --timeout: the server is saturated or stalled",
                "retries     7 (429: 2, 503: 5), 4 answers replayed, 1 buys still refused after the last attempt",
                "schedule    2 of 10 started late (20.0%), up to 4.5 ms behind; none dropped",
                "WARNING     2 of 10 requests (20.0%) started late, up to 4.5 ms behind schedule: every connection was busy; the rate was not offered on time (raise --connections or lower --rate)",
                "thresholds  ok     rps>1 (measured 3 req/s)",
                "verify      FAILED: 3 confirmed to this client, 3 reservations, 2 units persisted, stock 10, consumer NOT drained",
                "  problem: the consumer did not drain in time",
                "lifecycle   OK: paid 2  expired 1  pending_payment 0  cancelled 0  rejected 0; stock back 8 (MySQL), - (Redis)",
                "interrupted after 3.2 s: the figures cover the requests answered until then",
            ],
            "{text}"
        );
    }

    #[test]
    fn blocks_without_figures_are_left_out() {
        let mut s = fixture::summary();
        s.errors.clear();
        s.retries = crate::stats::Retries::default();
        s.schedule = None;
        s.latency_by_outcome.retain(|k, _| *k == "reserved");
        s.mode = crate::args::Mode::ClosedLoop { concurrency: 4 };
        let text = s.render();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("mode        closed loop, 4 in flight, 1000 users"));
        assert!(text.ends_with("timeouts 2\n"), "{text}");
    }
}
