//! The sale page's charts against the snapshots the page received: each series has one point
//! per snapshot, placed where its time and value put it in the plot area, and the screenshot of
//! the chart shows each line in its colour.

use base64::Engine;
use serde_json::Value;

use super::{Console, STOCK};
use crate::browser::Browser;

/// Keeps every snapshot the page renders in `window.snapshots`. Run before the sale page
/// opens: its stream hands each snapshot to the global `render`.
pub(super) async fn record_snapshots(b: &mut Browser) {
    b.eval(
        "(() => { window.snapshots = []; const draw = window.render;
           window.render = (snap) => { window.snapshots.push(snap); draw(snap); }; })()",
    )
    .await;
}

/// The item's chart (reserved and persisted units) and the consumer lag chart.
pub(super) async fn draw_what_the_page_received(c: &mut Console) {
    let item = c.item;
    // One synchronous read: no snapshot lands between the data and the drawing.
    let seen = c
        .b
        .eval(&format!(
            "(() => {{
               const chart = (svg) => ({{
                 axes: [...svg.querySelectorAll('line.axis')].map((l) => ['x1', 'y1', 'x2', 'y2'].map((a) => Number(l.getAttribute(a)))),
                 lines: Object.fromEntries([...svg.querySelectorAll('polyline')].map((p) => [p.getAttribute('class'), p.getAttribute('points')])),
               }});
               return {{
                 snapshots: window.snapshots.map((s) => {{
                   const i = s.sale.items.find((x) => x.id === {item});
                   return [Date.parse(s.at), i.reserved_units ?? 0, i.persisted_units ?? 0, s.consumer_lag ?? 0];
                 }}),
                 item: chart(document.querySelector('[data-item=\"{item}\"] .chart svg')),
                 lag: chart(document.querySelector('#lag-chart svg')),
               }};
             }})()"
        ))
        .await;
    let snaps: Vec<[f64; 4]> = serde_json::from_value(seen["snapshots"].clone()).unwrap();
    assert!(
        (3..900).contains(&snaps.len()),
        "a snapshot a second while the sale sold out, fewer than the charts keep: {}",
        snaps.len()
    );
    let last = snaps[snaps.len() - 1];
    assert_eq!((last[1], last[2]), (STOCK as f64, STOCK as f64), "{last:?}");
    let times: Vec<f64> = snaps.iter().map(|s| s[0]).collect();
    let column = |k: usize| snaps.iter().map(|s| s[k]).collect::<Vec<f64>>();
    let item_series = [("reserved", column(1)), ("persisted", column(2))];
    check_chart(&seen["item"], &times, &item_series, STOCK as f64);
    check_chart(&seen["lag"], &times, &[("lag", column(3))], 0.0);
    lines_show_in_the_screenshot(c).await;
}

/// Each series of `chart` has a point per time, at its place in the plot area the axes bound:
/// time across from the first to the last, value up from 0 to the largest shown or `floor`.
fn check_chart(chart: &Value, times: &[f64], series: &[(&str, Vec<f64>)], floor: f64) {
    let axes: Vec<[f64; 4]> = serde_json::from_value(chart["axes"].clone()).unwrap();
    assert_eq!(axes.len(), 2, "{chart}");
    let [left, bottom, right, _] = axes[0];
    let top = axes[1][1];
    let t0 = times.iter().copied().fold(f64::INFINITY, f64::min);
    let t1 = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let vmax = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(floor.max(1.0), f64::max);
    for (class, values) in series {
        let drawn = chart["lines"][class]
            .as_str()
            .unwrap_or_else(|| panic!("no {class} line: {chart}"));
        let points: Vec<(f64, f64)> = drawn
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(points.len(), times.len(), "{class}: a point per snapshot");
        for (i, (&(x, y), (&t, &v))) in points.iter().zip(times.iter().zip(values)).enumerate() {
            let want_x = left + (t - t0) / (t1 - t0).max(1.0) * (right - left);
            let want_y = bottom - v / vmax * (bottom - top);
            assert!(
                (x - want_x).abs() <= 0.1 && (y - want_y).abs() <= 0.1,
                "{class} point {i} ({v} at {t}) drawn at ({x}, {y}), not ({want_x:.1}, {want_y:.1})"
            );
        }
    }
}

/// A screenshot of the item's chart holds pixels of each line's colour (as styled on the page).
async fn lines_show_in_the_screenshot(c: &mut Console) {
    let svg = format!(
        "document.querySelector('[data-item=\"{}\"] .chart svg')",
        c.item
    );
    let rect = c
        .b
        .eval(&format!(
            "(() => {{ const r = {svg}.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()"
        ))
        .await;
    let region: [f64; 4] = serde_json::from_value(rect).unwrap();
    assert!(
        region[2] > 100.0 && region[3] > 50.0,
        "chart box {region:?}"
    );
    let png = c.b.capture(Some(region)).await;
    std::fs::write(c.out.join("1-chart.png"), &png).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    // The page decodes the PNG for us and counts pixels near each line's stroke colour.
    let counts = c
        .b
        .eval(&format!(
            "(async () => {{
               const img = new Image();
               img.src = 'data:image/png;base64,{b64}';
               await img.decode();
               const canvas = document.createElement('canvas');
               canvas.width = img.width; canvas.height = img.height;
               const g = canvas.getContext('2d');
               g.drawImage(img, 0, 0);
               const px = g.getImageData(0, 0, img.width, img.height).data;
               const near = (cls) => {{
                 const line = {svg}.querySelector(`polyline.${{cls}}`);
                 const rgb = (getComputedStyle(line).stroke.match(/\\d+/g) || []).map(Number);
                 if (rgb.length < 3) return 0;
                 let n = 0;
                 for (let i = 0; i < px.length; i += 4) {{
                   if (Math.abs(px[i] - rgb[0]) + Math.abs(px[i + 1] - rgb[1]) + Math.abs(px[i + 2] - rgb[2]) <= 30) n++;
                 }}
                 return n;
               }};
               return {{ reserved: near('reserved'), persisted: near('persisted'), all: img.width * img.height }};
             }})()"
        ))
        .await;
    eprintln!("chart pixels: {counts}");
    let all = counts["all"].as_u64().unwrap();
    for class in ["reserved", "persisted"] {
        let n = counts[class].as_u64().unwrap();
        assert!(n >= 50, "the screenshot shows no {class} line: {counts}");
        // A line is thin: a colour covering much of the chart is its background's.
        assert!(
            n < all / 10,
            "the {class} line's colour fills the chart: {counts}"
        );
    }
}
