//! `loadtest`: see `loadtest --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = loadtest::Args::parse();
    let progress = !args.no_progress;
    // The first Ctrl-C stops the load (the summary still comes); a second one quits at once.
    let (interrupted, on_interrupt) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return; // no signal handling here: the run cannot be interrupted, only killed
        }
        let _ = interrupted.send(());
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted twice: quitting without a summary");
            std::process::exit(130);
        }
    });
    let cancel = async move {
        if on_interrupt.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    if args.crowd.queue {
        return crowd(args, progress, cancel).await;
    }
    match loadtest::run_until(args, progress, cancel).await {
        Ok(summary) => {
            print!("{}", summary.render());
            if let Some(report) = &summary.reconciliation {
                println!("\nreconciliation report:\n{}", render_report(report));
            }
            if summary.passed() {
                ExitCode::SUCCESS
            } else {
                for t in summary.broken_thresholds() {
                    eprintln!("threshold broken: {} (measured {})", t.threshold, t.shown);
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--queue`: the crowd, its report, exit code 1 when too many requests got no answer.
async fn crowd(
    args: loadtest::Args,
    progress: bool,
    cancel: impl std::future::Future<Output = ()>,
) -> ExitCode {
    match loadtest::run_crowd(args, progress, cancel).await {
        Ok(report) => {
            print!("{}", report.render());
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A compact table of the report's items and checks.
fn render_report(report: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  sale {}: {} (kafka consumer lag {})",
        report["sale_id"],
        if report["ok"] == true {
            "all checks ok"
        } else {
            "DISCREPANCIES"
        },
        report["kafka_consumer_lag"]
    );
    for item in report["items"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "  item {}: initial {}  redis remaining {}  reserved {}  held (pending + paid) {}  rejected {}  mysql stock {}",
            item["item_id"],
            item["initial_stock"],
            item["redis_remaining"],
            item["reserved_units"],
            item["persisted_units"],
            item["rejected_orders"],
            item["mysql_stock"]
        );
        let _ = writeln!(
            s,
            "  item {}: pending_payment {}  paid {}  cancelled {}  expired {}  units released {} (MySQL) / {} (Redis)",
            item["item_id"],
            item["pending_orders"],
            item["paid_orders"],
            item["cancelled_orders"],
            item["expired_orders"],
            item["released_units"],
            item["redis_released_units"]
        );
        for c in item["checks"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "    {:<4} {:<24} {}",
                if c["ok"] == true { "ok" } else { "FAIL" },
                c["name"].as_str().unwrap_or_default(),
                c["detail"].as_str().unwrap_or_default()
            );
        }
    }
    s
}
