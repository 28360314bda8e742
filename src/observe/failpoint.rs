//! Named pause points for fault tests. A process started with `FAILPOINTS=name[,name…]` stops
//! at a named point when it reaches it, logs `failpoint reached` with the name, and waits there
//! until it is killed, so a test can SIGKILL it at exactly that moment. Without the variable
//! (always, in production) a point costs one read of a flag computed once.

use std::sync::LazyLock;

/// The environment variable that arms points (not a `SECKILL_` setting: tests only).
pub const VARIABLE: &str = "FAILPOINTS";

static ARMED: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::env::var(VARIABLE)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
});

/// Pauses forever here if `name` is armed.
pub(crate) async fn pause_if_armed(name: &'static str) {
    if ARMED.is_empty() || !ARMED.iter().any(|n| n == name) {
        return;
    }
    tracing::warn!(failpoint = name, "failpoint reached: paused until killed");
    std::future::pending::<()>().await;
}
