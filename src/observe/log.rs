//! Logging: human-readable lines or JSON (one object per line, with the current request span:
//! method, route, status, order id), filtered by the settings (or `RUST_LOG`). Logs go to
//! stderr, so command output on stdout (reports, JSON) stays clean. A fault that repeats many
//! times a second (a server down) is logged through a [`Throttle`]: once at once, then once per
//! [`REPEAT_EVERY`] with the number of repeats in between.

use std::{
    collections::HashMap,
    io::IsTerminal,
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber once; later calls (tests building several apps) are no-ops.
pub(crate) fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_target(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A subscriber already installed (tests) is fine.
    let _ = result;
}

/// Shortest time between two log lines of the same repeated report.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Lets one kind of line through at most once per period, counting what it held back.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Throttle {
    /// `Some(held back since the last line)` when a line of `kind` may be logged now.
    pub fn allow(&self, kind: &str, every: Duration) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get_mut(kind) {
            Some((last, held)) if now.duration_since(*last) < every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                *last = now;
                *held = 0;
                Some(n)
            }
            None => {
                if seen.len() > 1_000 {
                    seen.clear(); // bounded: kinds come from librdkafka's error codes
                }
                seen.insert(kind.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_line_passes_once_per_period_with_the_count_it_held_back() {
        let t = Throttle::default();
        let every = Duration::from_millis(50);
        assert_eq!(t.allow("down", every), Some(0));
        assert_eq!(t.allow("down", every), None);
        assert_eq!(t.allow("down", every), None);
        assert_eq!(t.allow("other", every), Some(0), "kinds are apart");
        std::thread::sleep(every);
        assert_eq!(t.allow("down", every), Some(2));
    }
}
