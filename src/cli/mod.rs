//! The `seckill` command line.

mod commands;
mod duration;
mod healthcheck;
mod watch;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{api::state::Services, config::Settings, observe::log};

/// A flash-sale engine: Redis Lua stock deduction, a Kafka outbox, MySQL under row locks,
/// and reconciliation that proves they agree.
#[derive(Debug, Parser)]
#[command(name = "seckill", version, about)]
pub struct Cli {
    /// TOML settings file (environment variables SECKILL_* override it).
    #[arg(long, global = true, env = "SECKILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (admin + buy) with the outbox relay and the prewarm scheduler.
    Serve,
    /// Run the order consumer: Kafka -> MySQL under row locks (health and metrics on
    /// SECKILL_HTTP_ADDR).
    Consume,
    /// Reconcile one sale and print its report (exit code 1 when a check fails).
    Reconcile {
        /// The sale to reconcile.
        #[arg(long)]
        sale: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Re-emit ledger entries missing from MySQL to Kafka.
        #[arg(long, conflicts_with = "watch")]
        repair: bool,
        /// Redraw the report until Ctrl-C; the exit code is the last report's.
        #[arg(long)]
        watch: bool,
        /// Time between two reports with --watch (30s, 2m, 500ms).
        #[arg(long, default_value = "2s", value_parser = duration::parse, requires = "watch")]
        every: Duration,
    },
    /// Print a buyer token (HS256 JWT) signed with SECKILL_JWT_SECRET, for curl and manual
    /// tests.
    Token {
        /// The buyer's user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// How long the token is valid (30s, 15m, 1h, 1d).
        #[arg(long, default_value = "1h", value_parser = duration::parse)]
        ttl: Duration,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// API, consumer and reconciler in one process: the simple deployment.
    All,
    /// Print the effective settings (secrets hidden), the fixed values, and every SECKILL_*
    /// variable name; --reference prints the settings reference (docs/CONFIGURATION.md).
    Config {
        /// Print the settings reference in Markdown instead.
        #[arg(long)]
        reference: bool,
    },
    /// Print the OpenAPI document the buyers' listener serves at /openapi.json (generated from
    /// the code); --admin prints the admin listener's.
    Openapi {
        /// Print the admin listener's document (admin API, live events, console, /metrics)
        /// instead of the buyers' listener's.
        #[arg(long)]
        admin: bool,
    },
    /// Ask this host's own listener for a health route: exit 0 on a 2xx answer, 1 otherwise
    /// (for container health checks; the image carries no curl).
    Healthcheck {
        /// Route to ask.
        #[arg(long, default_value = "/healthz")]
        path: String,
        /// Address to ask (default: SECKILL_HTTP_ADDR, through loopback when it is 0.0.0.0).
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
    },
}

/// Runs the command line; the exit code is 0 on success.
pub async fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The serving roles use the secrets; a consumer or a migration does not need them.
    let secrets = match cli.command {
        Command::Serve | Command::All => settings.validate_secrets(),
        Command::Token { .. } => settings.validate_jwt_secret(),
        _ => Ok(()),
    };
    if let Err(e) = secrets {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    log::init(&settings.log);
    for name in &settings.ignored_env {
        tracing::warn!(
            variable = %name,
            "ignoring a SECKILL_* variable that looks like a Kubernetes service link (set enableServiceLinks: false to drop them)"
        );
    }
    match execute(cli.command, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Config { reference } => commands::config(&settings, reference),
        Command::Migrate => commands::migrate(&settings).await,
        Command::Serve => commands::serve(settings).await,
        Command::Consume => commands::consume(&settings).await,
        Command::All => commands::all(settings).await,
        Command::Healthcheck { path, addr } => commands::healthcheck(&settings, &path, addr).await,
        Command::Openapi { admin } => commands::openapi(admin),
        Command::Token { user, ttl } => commands::token(&settings, &user, ttl),
        Command::Reconcile {
            sale,
            json,
            watch: true,
            every,
            ..
        } => {
            let services = Services::build(settings).await?;
            watch::watch(&services.reconciler, sale, every, json).await
        }
        Command::Reconcile {
            sale, json, repair, ..
        } => commands::reconcile(settings, sale, json, repair).await,
    }
}

/// The error and its causes on one line, without causes that only repeat the previous one
/// (drivers often wrap an I/O error and print it twice).
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn repeated_causes_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = anyhow::Error::new(io)
            .context("Connection refused")
            .context("cannot reach Redis");
        assert_eq!(one_line(&e), "cannot reach Redis: Connection refused");
    }
}
