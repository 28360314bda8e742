//! The cheap attacks on a sale, each tried against the real servers: slow and greedy clients
//! (`connections`), floods of lookups and cancels, and of unauthenticated buys that would drain
//! the global bucket (`floods`), ambiguous identity headers and tokens from the future
//! (`identity`), and forged, stale, replayed or oversized payment notifications (`payments`).
//! docs/ARCHITECTURE.md's threat table points at these tests.

mod connections;
mod floods;
mod identity;
mod payments;

use crate::support::TestApp;

/// The value of the counter `name` with `labels` (`key="value"` pairs, as Prometheus prints
/// them) in the app's `/metrics`, 0 when absent.
pub(crate) async fn metric(app: &TestApp, name: &str, labels: &str) -> f64 {
    let text = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let wanted = format!("{name}{{{labels}}}");
    text.lines()
        .find(|l| l.starts_with(&wanted))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}
