//! The report's charts as inline SVG: lines over time, stacked outcome bars per second, and
//! the latency histogram.

use std::fmt::Write;

use super::escape;
use crate::{outcome::Counts, summary::Summary};

const W: f64 = 760.0;
const H: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// Colours of the outcomes, in the order of [`outcome_series`].
const OUTCOME_COLOURS: [&str; 5] = ["#2e7d32", "#1565c0", "#6a1b9a", "#ef6c00", "#c62828"];

/// Opens a chart: its figure, caption and SVG canvas.
fn open_chart(out: &mut String, caption: &str, label: &str) {
    let _ = write!(
        out,
        r#"<figure><figcaption>{}</figcaption><svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(caption),
        escape(label)
    );
}

/// Five horizontal grid lines from 0 to `y_max`, labelled with their value and `unit`.
fn y_grid(out: &mut String, y_max: f64, unit: &str) {
    let plot_h = H - TOP - BOTTOM;
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(k) / 4.0;
        let label = if unit.is_empty() {
            fmt_num(v)
        } else {
            format!("{} {}", fmt_num(v), escape(unit))
        };
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{label}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
        );
    }
}

/// The frame of a chart over time: canvas, y grid, x labels in seconds, x axis.
fn frame(out: &mut String, title: &str, y_max: f64, y_unit: &str, x_max: f64) {
    open_chart(out, title, title);
    y_grid(out, y_max, y_unit);
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
pub(super) type Line<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// Lines over time.
pub(super) fn line_chart(title: &str, y_unit: &str, lines: &[Line<'_>]) -> String {
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
    let pick =
        |f: fn(&Counts) -> u64| -> Vec<u64> { s.series.iter().map(|p| f(&p.outcomes)).collect() };
    vec![
        ("reserved", pick(|c| c.reserved)),
        ("sold out", pick(|c| c.sold_out)),
        ("limit exceeded", pick(|c| c.limit_exceeded)),
        ("rate limited", pick(|c| c.rate_limited)),
        ("errors + timeouts", pick(|c| c.errors + c.timeouts)),
    ]
}

/// Stacked bars of the outcomes per second.
pub(super) fn outcome_chart(s: &Summary) -> String {
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
pub(super) fn histogram_chart(s: &Summary) -> String {
    let mut out = String::new();
    let buckets = &s.latency_histogram;
    let n = buckets.len().max(1) as f64;
    let y_max = nice_ceiling(buckets.iter().map(|b| b.count).max().unwrap_or(0) as f64);
    open_chart(
        &mut out,
        "Latency histogram (requests per bucket, upper bound in ms)",
        "latency histogram",
    );
    y_grid(&mut out, y_max, "");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        for (v, top) in [
            (0.0, 1.0),
            (7.0, 10.0),
            (1234.0, 2000.0),
            (0.3, 0.5),
            (200.0, 200.0),
        ] {
            assert_eq!(nice_ceiling(v), top, "the axis above {v}");
        }
    }
}
