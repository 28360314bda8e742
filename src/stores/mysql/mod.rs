//! MySQL: the pool, migrations, and the small query modules the rest of the service calls.
//! MySQL is the final guard and sees only winners, batched; the crowd never reaches it.

pub mod deployment;
pub mod lifecycle;
pub mod orders;
pub mod reports;

pub mod sales;

use std::{str::FromStr, time::Duration};

use sqlx::{
    MySqlPool,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
};

use crate::config::MySqlSettings;

/// Migrations compiled in from `migrations/`.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection before failing; a stuck database must turn
/// into fast errors, not a pile of waiting requests.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection options parsed from the settings' URL.
///
/// # Errors
/// The URL does not parse.
pub fn connect_options(settings: &MySqlSettings) -> Result<MySqlConnectOptions, sqlx::Error> {
    let url = settings.url.expose().replacen("mariadb://", "mysql://", 1);
    MySqlConnectOptions::from_str(&url)
}

/// Opens a pool and checks that the server answers.
///
/// # Errors
/// The URL is malformed or the server is unreachable.
pub async fn connect(settings: &MySqlSettings) -> Result<MySqlPool, sqlx::Error> {
    let options = connect_options(settings)?;
    MySqlPoolOptions::new()
        .max_connections(u32::try_from(settings.max_connections).unwrap_or(u32::MAX))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
}

/// Opens the pool (and applies pending migrations when `migrate`), with errors that name the
/// server and never its password.
///
/// # Errors
/// The server is unreachable, or a migration failed.
pub async fn open(settings: &MySqlSettings, migrate_now: bool) -> anyhow::Result<MySqlPool> {
    use anyhow::Context;
    let db = connect(settings).await.with_context(|| {
        format!(
            "cannot reach MySQL at {}",
            crate::config::redacted(settings.url.expose())
        )
    })?;
    if migrate_now {
        migrate(&db)
            .await
            .context("applying database migrations failed")?;
    }
    Ok(db)
}

/// Applies pending migrations.
///
/// # Errors
/// A migration failed or an applied one was edited afterwards.
pub async fn migrate(pool: &MySqlPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Round-trips `SELECT 1`.
///
/// # Errors
/// The server did not answer.
pub async fn ping(pool: &MySqlPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// True for connection-level failures: the database is down or saturated, not a bug.
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    )
}
