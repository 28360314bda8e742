//! `seckill reconcile --watch`: the report redrawn in the terminal every few seconds until
//! Ctrl-C; the exit code is the last report's.

use std::{io::Write, process::ExitCode, time::Duration};

use crate::reconcile::Reconciler;

/// ANSI: clear the screen and go home.
const CLEAR: &str = "\x1b[2J\x1b[H";

/// Reconciles `sale` every `every` until SIGINT or SIGTERM, redrawing the report.
///
/// # Errors
/// The first run failed (unknown sale, store down); later failures are shown and retried.
pub async fn watch(
    reconciler: &Reconciler,
    sale: u64,
    every: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let stop = crate::app::shutdown_on_signals();
    let first_report = reconciler.run_once(sale, false).await?;
    let mut last_ok = first_report.ok;
    let mut first = Some(first_report);
    loop {
        let shown = match first.take() {
            Some(report) => Ok(report),
            None => reconciler.run_once(sale, false).await,
        };
        let mut out = std::io::stdout().lock();
        match shown {
            Ok(report) => {
                last_ok = report.ok;
                if json {
                    let _ = writeln!(out, "{}", serde_json::to_string(&report)?);
                } else {
                    let _ = write!(out, "{CLEAR}{}", report.to_table());
                    let _ = writeln!(
                        out,
                        "\nevery {} s; Ctrl-C to stop (exit code: 0 clean, 1 failing)",
                        every.as_secs_f64()
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "reconciliation failed: {e}; retrying");
            }
        }
        let _ = out.flush();
        drop(out);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    Ok(if last_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
