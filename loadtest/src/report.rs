//! `--report run.html`: one self-contained HTML file (inline SVG and an inline style sheet, no
//! script, no external resource) with the run's figures, its per-second series (throughput,
//! p50/p99, outcomes) and its latency histogram. Opens anywhere, offline, and can be attached
//! to a ticket as it is.

use std::fmt::Write;

use crate::summary::Summary;

const W: f64 = 760.0;
const H: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// Colours of the outcomes, in the order of [`outcome_series`].
const OUTCOME_COLOURS: [&str; 5] = ["#2e7d32", "#1565c0", "#6a1b9a", "#ef6c00", "#c62828"];

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
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

/// A round number at or above `v`, for an axis's top (1, 2, 2.5, 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The frame of a chart: axes, y grid lines with labels, x labels in seconds.
fn frame(out: &mut String, title: &str, y_max: f64, y_unit: &str, x_max: f64) {
    let _ = write!(
        out,
        r#"<figure><figcaption>{}</figcaption><svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(title),
        escape(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{} {}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(v),
            escape(y_unit)
        );
    }
    // Round steps in seconds, at most about eight labels.
    let step = nice_ceiling(x_max / 8.0).max(1.0);
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}s</text>"#,
            x_of(t, x_max),
            H - BOTTOM + 16.0,
            fmt_num(t)
        );
        t += step;
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555"/>"##,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM
    );
}

fn x_of(t: f64, x_max: f64) -> f64 {
    LEFT + (W - LEFT - RIGHT) * (t / x_max.max(1e-9))
}

fn y_of(v: f64, y_max: f64) -> f64 {
    let plot_h = H - TOP - BOTTOM;
    TOP + plot_h - plot_h * (v / y_max.max(1e-9)).min(1.0)
}

/// One line of a chart: label, colour, points `(t, value)`.
type Line<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// Lines over time.
fn line_chart(title: &str, y_unit: &str, lines: &[Line<'_>]) -> String {
    let mut out = String::new();
    let x_max = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = nice_ceiling(
        lines
            .iter()
            .flat_map(|l| l.2.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    frame(&mut out, title, y_max, y_unit, x_max);
    for (label, colour, points) in lines {
        let pts: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x_of(*t, x_max), y_of(*v, y_max)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            pts.join(" "),
            escape(label)
        );
    }
    out.push_str("</svg>");
    legend(&mut out, lines.iter().map(|l| (l.0, l.1)));
    out.push_str("</figure>");
    out
}

fn legend<'a>(out: &mut String, items: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push_str(r#"<div class="legend">"#);
    for (label, colour) in items {
        let _ = write!(
            out,
            r#"<span><i style="background:{colour}"></i>{}</span>"#,
            escape(label)
        );
    }
    out.push_str("</div>");
}

/// The outcomes of each second, per second: `(label, counts per second)`.
fn outcome_series(s: &Summary) -> Vec<(&'static str, Vec<u64>)> {
    let pick = |f: fn(&crate::outcome::Counts) -> u64| -> Vec<u64> {
        s.series.iter().map(|p| f(&p.outcomes)).collect()
    };
    vec![
        ("reserved", pick(|c| c.reserved)),
        ("sold out", pick(|c| c.sold_out)),
        ("limit exceeded", pick(|c| c.limit_exceeded)),
        ("rate limited", pick(|c| c.rate_limited)),
        ("errors + timeouts", pick(|c| c.errors + c.timeouts)),
    ]
}

/// Stacked bars of the outcomes per second.
fn outcome_chart(s: &Summary) -> String {
    let mut out = String::new();
    let series = outcome_series(s);
    let x_max = s.series.last().map_or(1.0, |p| p.t).max(1.0);
    let y_max = nice_ceiling(s.series.iter().map(|p| p.rps).fold(0.0, f64::max));
    frame(&mut out, "Outcomes per second", y_max, "/s", x_max);
    let mut prev_t = 0.0;
    for (i, p) in s.series.iter().enumerate() {
        let (x0, x1) = (x_of(prev_t, x_max), x_of(p.t, x_max));
        prev_t = p.t;
        let mut base = 0.0;
        for (k, (label, counts)) in series.iter().enumerate() {
            let per_sec = counts[i] as f64 / p.secs.max(1e-9);
            if per_sec <= 0.0 {
                continue;
            }
            let (y_top, y_bottom) = (y_of(base + per_sec, y_max), y_of(base, y_max));
            base += per_sec;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y_top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{:.0}s: {} {}</title></rect>"#,
                x0 + 0.5,
                (x1 - x0 - 1.0).max(0.5),
                (y_bottom - y_top).max(0.0),
                OUTCOME_COLOURS[k],
                p.t,
                counts[i],
                label
            );
        }
    }
    out.push_str("</svg>");
    legend(
        &mut out,
        series
            .iter()
            .zip(OUTCOME_COLOURS)
            .map(|((l, _), c)| (*l, c)),
    );
    out.push_str("</figure>");
    out
}

/// Bars of the latency histogram (1-2-5 buckets, equal widths).
fn histogram_chart(s: &Summary) -> String {
    let mut out = String::new();
    let buckets = &s.latency_histogram;
    let n = buckets.len().max(1) as f64;
    let y_max = nice_ceiling(buckets.iter().map(|b| b.count).max().unwrap_or(0) as f64);
    let _ = write!(
        out,
        r#"<figure><figcaption>Latency histogram (requests per bucket, upper bound in ms)</figcaption><svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="latency histogram">"#
    );
    let plot_h = H - TOP - BOTTOM;
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    let slot = (W - LEFT - RIGHT) / n;
    for (i, b) in buckets.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let y = y_of(b.count as f64, y_max);
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#1565c0"><title>&#8804; {} ms: {}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            x + 2.0,
            (slot - 4.0).max(1.0),
            (H - BOTTOM - y).max(0.0),
            b.up_to_ms,
            b.count,
            x + slot / 2.0,
            H - BOTTOM + 16.0,
            b.up_to_ms
        );
    }
    out.push_str("</svg></figure>");
    out
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

/// The whole report.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>seckill loadtest report</title><style>\
         body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:820px}\
         h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
         pre{background:#f6f6f6;padding:12px;white-space:pre-wrap;font-size:12px}\
         table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         th{background:#f0f0f0}td:first-child{text-align:left}\
         figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}\
         .tick{font-size:11px;fill:#555}.legend span{margin-right:14px;font-size:12px}\
         .legend i{display:inline-block;width:10px;height:10px;margin-right:4px}\
         .bad{color:#c62828;font-weight:600}.good{color:#2e7d32}\
         </style></head><body>\n",
    );
    out.push_str("<h1>seckill loadtest report</h1>\n");
    let _ = writeln!(out, "<pre>{}</pre>", escape(&s.render()));
    if !s.thresholds.is_empty() {
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
    out.push_str("<h2>Over time</h2>\n");
    // A short last interval (the run's tail) makes a noisy point: lines leave it out.
    let point = |f: fn(&crate::stats::Second) -> f64| -> Vec<(f64, f64)> {
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
    out.push_str("<h2>Latency</h2>\n");
    out.push_str(&histogram_chart(s));
    let mut rows = vec![row("all", &s.latency)];
    rows.extend(s.latency_per_outcome().map(|(k, l)| row(k, l)));
    table(
        &mut out,
        &[
            "outcome", "requests", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
        ],
        &rows,
    );
    if !s.errors.is_empty() {
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
        table(&mut out, &["cause", "requests", "hint"], &rows);
    }
    out.push_str("\n</body></html>\n");
    out
}

fn row(name: &str, l: &crate::summary::Latency) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_axes_are_round() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(1234.0), 2000.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(200.0), 200.0);
    }
}
