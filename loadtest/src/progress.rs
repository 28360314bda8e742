//! The live output: one line a second on standard error, with the requests per second of that
//! second, the latency percentiles so far, the outcome counts so far and the errors by cause.
//!
//! On a terminal an indicatif bar stays at the bottom (elapsed time, progress toward
//! `--duration` or `--requests`) and the lines scroll above it; anywhere else (a log file, a
//! pipe, CI) only the plain lines are written, one per second, without control characters.

use std::{io::IsTerminal, time::Duration};

use crate::{
    args::{Mode, Plan},
    stats::{Second, Tally},
};

/// Where the live lines go.
pub(crate) struct Live {
    bar: Option<indicatif::ProgressBar>,
    request_bound: bool,
    open_loop: bool,
    retrying: bool,
}

impl Live {
    /// Starts the live output for `plan` (a bar only when standard error is a terminal).
    pub(crate) fn start(plan: &Plan) -> Self {
        let request_bound = plan.duration.is_none();
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| progress_bar(plan, request_bound));
        Self {
            bar,
            request_bound,
            open_loop: matches!(plan.mode, Mode::OpenLoop { .. }),
            retrying: !plan.args.retry_on.is_empty(),
        }
    }

    /// Prints the line of a second that just ended.
    pub(crate) fn tick(&self, elapsed: Duration, second: &Second, total: &Tally) {
        let line = line(elapsed, second, total, self.open_loop, self.retrying);
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.set_position(if self.request_bound {
                    total.counts.total()
                } else {
                    elapsed.as_secs()
                });
            }
            None => eprintln!("{line}"),
        }
    }

    /// A one-off message (an interrupt, say), above the bar if there is one.
    pub(crate) fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The line of one second: `[   3s]  1520 req/s  p50 1.21 ms  p99 4.80 ms  reserved 50 ...`.
/// Percentiles and counts are the run's so far; the rate is that second's.
pub(crate) fn line(
    elapsed: Duration,
    second: &Second,
    total: &Tally,
    open_loop: bool,
    retrying: bool,
) -> String {
    use std::fmt::Write;
    let h = &total.latency;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let c = &total.counts;
    let mut s = format!(
        "[{:>5.0}s] {:>7.0} req/s  p50 {:.2} ms  p99 {:.2} ms  reserved {}  sold_out {}  limit_exceeded {}  rate_limited {}  errors {}  timeouts {}",
        elapsed.as_secs_f64(),
        second.rps,
        ms(0.5),
        ms(0.99),
        c.reserved,
        c.sold_out,
        c.limit_exceeded,
        c.rate_limited,
        c.errors,
        c.timeouts
    );
    if retrying {
        let _ = write!(s, "  retries {}", total.retries.retries);
    }
    if open_loop {
        let _ = write!(s, "  late {}", total.late);
    }
    let errors = total.errors.compact();
    if !errors.is_empty() {
        let _ = write!(s, "  | {errors}");
    }
    s
}

fn progress_bar(plan: &Plan, request_bound: bool) -> indicatif::ProgressBar {
    let (len, unit) = match (plan.requests, plan.duration) {
        (Some(n), None) => (n, "req"),
        (_, Some(d)) => (d.as_secs().max(1), "s"),
        (None, None) => (0, "s"),
    };
    let bar = indicatif::ProgressBar::new(len);
    let template = if request_bound || len > 0 {
        format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}")
    } else {
        "{spinner} [{elapsed_precise}]".to_string()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        errors::ErrorCause,
        outcome::Outcome,
        stats::{Aggregate, Record, Recorder},
    };

    #[test]
    fn a_line_shows_the_rate_the_percentiles_the_outcomes_and_the_causes() {
        let recorder = Recorder::new(1);
        for (o, us) in [
            (Outcome::Reserved, 1_000),
            (Outcome::SoldOut, 2_000),
            (
                Outcome::Error(ErrorCause::status(401, br#"{"code":"unauthorized"}"#)),
                500,
            ),
        ] {
            recorder.record(
                0,
                Record {
                    outcome: Some(o),
                    latency_us: us,
                    ..Record::default()
                },
            );
        }
        let mut agg = Aggregate::default();
        let second = agg.drain(&recorder, Duration::from_secs(1)).clone();
        let l = line(Duration::from_secs(1), &second, &agg.total, true, true);
        assert!(
            l.starts_with("[    1s]       3 req/s  p50 1.00 ms  p99 2.00 ms"),
            "{l}"
        );
        assert!(
            l.contains("reserved 1  sold_out 1  limit_exceeded 0"),
            "{l}"
        );
        assert!(l.contains("errors 1  timeouts 0  retries 0  late 0"), "{l}");
        assert!(l.ends_with("| 401 unauthorized 1"), "{l}");
        assert!(!l.contains('\u{1b}'), "no control characters: {l}");
    }
}
