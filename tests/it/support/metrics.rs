//! Reading Prometheus text: one sample's value, an app's counter, a process's `/metrics`.

use super::TestApp;

/// The value of one sample line of the Prometheus text format, 0 when absent.
pub fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l[prefix.len()..].trim().parse().ok())
        .unwrap_or(0.0)
}

/// The value of the counter `name` with `labels` (`key="value"` pairs, as Prometheus prints
/// them) in the app's `/metrics`, 0 when absent.
pub async fn metric(app: &TestApp, name: &str, labels: &str) -> f64 {
    let text = app.metrics_text().await;
    let wanted = format!("{name}{{{labels}}}");
    text.lines()
        .find(|l| l.starts_with(&wanted))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The `/metrics` text of the process at `base`; `None` while it does not answer.
pub async fn metrics_at(http: &reqwest::Client, base: &str) -> Option<String> {
    let resp = http.get(format!("{base}/metrics")).send().await.ok()?;
    resp.text().await.ok()
}
