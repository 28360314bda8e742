//! `--report run.html`: one self-contained HTML file (inline SVG and an inline style sheet, no
//! script, no external resource) with the run's figures, its per-second series (throughput,
//! p50/p99, outcomes) and its latency histogram. Opens anywhere, offline, and can be attached
//! to a ticket as it is.

mod charts;

use std::fmt::Write;

use charts::{histogram_chart, line_chart, outcome_chart};

use crate::{
    stats::Second,
    summary::{Latency, Summary},
};

/// The page's head: its title and its whole style sheet.
const PAGE_HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>seckill loadtest report</title><style>\
         body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:820px}\
         h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
         pre{background:#f6f6f6;padding:12px;white-space:pre-wrap;font-size:12px}\
         table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         th{background:#f0f0f0}td:first-child{text-align:left}\
         figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}\
         .tick{font-size:11px;fill:#555}.legend span{margin-right:14px;font-size:12px}\
         .legend i{display:inline-block;width:10px;height:10px;margin-right:4px}\
         .bad{color:#c62828;font-weight:600}.good{color:#2e7d32}\
         </style></head><body>\n";

/// The whole report.
pub(crate) fn render(s: &Summary) -> String {
    let mut out = String::new();
    out.push_str(PAGE_HEAD);
    out.push_str("<h1>seckill loadtest report</h1>\n");
    let _ = writeln!(out, "<pre>{}</pre>", escape(&s.render()));
    thresholds(&mut out, s);
    over_time(&mut out, s);
    latency(&mut out, s);
    errors(&mut out, s);
    out.push_str("\n</body></html>\n");
    out
}

/// Each threshold with its verdict, when there are any.
fn thresholds(out: &mut String, s: &Summary) {
    if s.thresholds.is_empty() {
        return;
    }
    out.push_str("<h2>Thresholds</h2><ul>");
    for t in &s.thresholds {
        let _ = write!(
            out,
            r#"<li class="{}">{} {} (measured {})</li>"#,
            if t.ok { "good" } else { "bad" },
            if t.ok { "ok" } else { "FAILED" },
            escape(&t.threshold),
            escape(&t.shown)
        );
    }
    out.push_str("</ul>\n");
}

/// Throughput, p50 and p99, and outcomes, second by second.
fn over_time(out: &mut String, s: &Summary) {
    out.push_str("<h2>Over time</h2>\n");
    // A short last interval (the run's tail) makes a noisy point: lines leave it out.
    let point = |f: fn(&Second) -> f64| -> Vec<(f64, f64)> {
        s.series
            .iter()
            .filter(|p| p.secs >= 0.5 || s.series.len() == 1)
            .map(|p| (p.t, f(p)))
            .collect()
    };
    out.push_str(&line_chart(
        "Throughput (requests per second)",
        "/s",
        &[("requests/s", "#1565c0", point(|p| p.rps))],
    ));
    out.push_str(&line_chart(
        "Latency per second (ms)",
        "ms",
        &[
            ("p50", "#2e7d32", point(|p| p.p50_ms)),
            ("p99", "#c62828", point(|p| p.p99_ms)),
        ],
    ));
    out.push_str(&outcome_chart(s));
}

/// The histogram, and the percentiles of all requests and of each outcome.
fn latency(out: &mut String, s: &Summary) {
    out.push_str("<h2>Latency</h2>\n");
    out.push_str(&histogram_chart(s));
    let mut rows = vec![latency_row("all", &s.latency)];
    rows.extend(s.latency_per_outcome().map(|(k, l)| latency_row(k, l)));
    table(
        out,
        &[
            "outcome", "requests", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
        ],
        &rows,
    );
}

fn latency_row(name: &str, l: &Latency) -> Vec<String> {
    vec![
        name.to_string(),
        l.count.to_string(),
        format!("{:.2}", l.p50_ms),
        format!("{:.2}", l.p90_ms),
        format!("{:.2}", l.p99_ms),
        format!("{:.2}", l.p999_ms),
        format!("{:.2}", l.max_ms),
    ]
}

/// The errors by cause with their hints, when there were any.
fn errors(out: &mut String, s: &Summary) {
    if s.errors.is_empty() {
        return;
    }
    out.push_str("<h2>Errors by cause</h2>");
    let rows: Vec<Vec<String>> = s
        .errors
        .iter()
        .map(|e| {
            vec![
                e.cause.clone(),
                e.count.to_string(),
                e.hint.unwrap_or("").to_string(),
            ]
        })
        .collect();
    table(out, &["cause", "requests", "hint"], &rows);
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_sections_follow_in_order_and_each_axis_carries_its_unit() {
        let mut s = crate::fixture::summary();
        s.thresholds = vec![crate::judge::judge(&"rps>1".parse().expect("parses"), &s)];
        let html = render(&s);
        let at = |needle: &str| {
            html.find(needle)
                .unwrap_or_else(|| panic!("{needle} is missing"))
        };
        let order = [
            "<pre>target      http://127.0.0.1:8080",
            "<h2>Thresholds</h2><ul><li class=\"good\">ok rps&gt;1 (measured 3 req/s)</li>",
            "<h2>Over time</h2>",
            "<figcaption>Throughput (requests per second)</figcaption>",
            "<figcaption>Latency per second (ms)</figcaption>",
            "<figcaption>Outcomes per second</figcaption>",
            "<h2>Latency</h2>",
            "<figcaption>Latency histogram (requests per bucket, upper bound in ms)</figcaption>",
            "<td>all</td><td>10</td>",
            "<h2>Errors by cause</h2>",
            "<td>401 unauthorized</td><td>2</td>",
        ];
        for pair in order.windows(2) {
            assert!(at(pair[0]) < at(pair[1]), "{} before {}", pair[0], pair[1]);
        }
        let histogram = &html[at("<figcaption>Latency histogram")..];
        assert!(
            html[..at("<figcaption>Latency histogram")].contains(r#"class="tick">0 /s</text>"#)
        );
        assert!(
            histogram.contains(r#"class="tick">0</text>"#),
            "{histogram}"
        );
        assert!(!histogram.contains(r#"class="tick">0 </text>"#));
        assert!(!html.contains("<script") && !html.contains("http-equiv"));
    }
}
