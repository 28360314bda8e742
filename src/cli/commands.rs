//! What each command does, once its settings are loaded.

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use super::{healthcheck, one_line};
use crate::{
    api::state::Services,
    app::{Application, ConsumerParts, shutdown_on_signals},
    config::{Settings, env_names},
    stores::mysql,
};

/// `seckill config`: the effective settings, the values fixed in the code, every variable.
pub(super) fn config(settings: &Settings, reference: bool) -> anyhow::Result<ExitCode> {
    if reference {
        print!("{}", crate::config::reference());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{settings:#?}");
    println!("\nFixed values (named constants in the code):");
    for (name, value) in fixed_values() {
        println!("  {name} = {value}");
    }
    println!("\nEnvironment variables:");
    for name in env_names() {
        println!("  {name}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The tuning values that are constants, not settings, with where they live.
fn fixed_values() -> Vec<(&'static str, String)> {
    vec![
        (
            "buy::gate::sold_out::RECHECK_AFTER",
            format!("{:?}", crate::buy::gate::sold_out::RECHECK_AFTER),
        ),
        (
            "buy::identify::LEEWAY_SECS",
            format!("{}s", crate::buy::identify::LEEWAY_SECS),
        ),
        ("api::edge::SLOW", format!("{:?}", crate::api::edge::SLOW)),
        (
            "orders::lifecycle::EXPIRY_BATCH",
            crate::orders::lifecycle::EXPIRY_BATCH.to_string(),
        ),
        (
            "stores::kafka::producer::LINGER",
            format!("{:?}", crate::stores::kafka::producer::LINGER),
        ),
        (
            "stores::kafka::producer::CONFIRMING_LINGER",
            format!("{:?}", crate::stores::kafka::producer::CONFIRMING_LINGER),
        ),
    ]
}

/// `seckill migrate`.
pub(super) async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    mysql::open(&settings.mysql, true).await?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// `seckill serve`: the API and its background jobs.
pub(super) async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let services = Arc::new(Services::build(settings).await?);
    let app = Application::bind(services).await?;
    app.run_until_stopped(shutdown_on_signals()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `seckill consume`: the order consumer and its health endpoint.
pub(super) async fn consume(settings: &Settings) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_on_signals();
    let parts = ConsumerParts::connect(settings).await?;
    let health = parts.serve_health(settings, shutdown.clone()).await?;
    parts.run(settings, shutdown.clone()).await?;
    shutdown.cancel();
    let _ = health.await;
    Ok(ExitCode::SUCCESS)
}

/// `seckill all`: the API, its jobs and the consumer in one process.
pub(super) async fn all(settings: Settings) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_on_signals();
    let services = Arc::new(Services::build(settings).await?);
    let parts = ConsumerParts::from_services(&services);
    let consumer = tokio::spawn({
        let settings = services.settings.clone();
        let shutdown = shutdown.clone();
        async move { parts.run(&settings, shutdown).await }
    });
    let app = Application::bind(services).await?;
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    consumer.await??;
    served?;
    Ok(ExitCode::SUCCESS)
}

/// `seckill healthcheck`: 0 when the route answers 2xx.
pub(super) async fn healthcheck(
    settings: &Settings,
    path: &str,
    addr: Option<SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let target = addr.unwrap_or_else(|| healthcheck::local_target(settings.http.addr));
    match healthcheck::get_status(target, path, Duration::from_secs(3)).await {
        Ok(code) if (200..300).contains(&code) => Ok(ExitCode::SUCCESS),
        Ok(code) => {
            eprintln!("unhealthy: {target}{path} answered {code}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("unhealthy: {}", one_line(&e));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `seckill openapi`.
pub(super) fn openapi(admin: bool) -> anyhow::Result<ExitCode> {
    use crate::api::doc::{Listener, json};
    let listener = if admin {
        Listener::Admin
    } else {
        Listener::Public
    };
    println!("{}", json(listener, chrono::Utc::now()));
    Ok(ExitCode::SUCCESS)
}

/// `seckill token`: a buyer token this service accepts.
pub(super) fn token(settings: &Settings, user: &str, ttl: Duration) -> anyhow::Result<ExitCode> {
    let user = user.trim();
    if user.is_empty() || user.len() > 128 {
        eprintln!("error: --user must be 1 to 128 characters");
        return Ok(ExitCode::from(2));
    }
    let token = crate::buy::identify::mint_token_for(settings, user, ttl.as_secs().max(1))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `seckill reconcile`: one report, exit 1 on a discrepancy.
pub(super) async fn reconcile(
    settings: Settings,
    sale: u64,
    json: bool,
    repair: bool,
) -> anyhow::Result<ExitCode> {
    let services = Services::build(settings).await?;
    let report = services.reconciler.run_once(sale, repair).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
