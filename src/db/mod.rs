//! The database: the connection pool, migrations, the local default cluster and
//! the demo data.

mod demo;
pub mod local;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

pub use demo::load_demo;
pub use local::LocalCluster;

/// How long a request waits for a pool connection. Past it, the database counts
/// as unavailable and the caller gets 503 `DATABASE_UNAVAILABLE`: every caller is
/// answered within a few seconds, even while PostgreSQL is down.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long start-up waits for the first connection.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(8);
/// No transaction of ours ever waits for a client while open; one idle this long
/// is a bug, and PostgreSQL ends it rather than let it hold its row locks.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "10s";

/// Opens the pool, after one direct connection that proves the database is there
/// (so that a bad URL fails at once, naming host, port and cause, instead of as a
/// pool timeout). Requests beyond `size` queue for up to [`ACQUIRE_TIMEOUT`].
pub async fn connect(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    let options = options.options([(
        "idle_in_transaction_session_timeout",
        IDLE_IN_TRANSACTION_TIMEOUT,
    )]);
    let target = match options.get_socket() {
        Some(dir) => format!("{}/.s.PGSQL.{}", dir.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    match tokio::time::timeout(FIRST_CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => drop(conn.close().await),
        Ok(Err(e)) => anyhow::bail!("cannot connect to PostgreSQL at {target}: {e}"),
        Err(_) => anyhow::bail!(
            "cannot connect to PostgreSQL at {target}: no answer within {} s",
            FIRST_CONNECT_TIMEOUT.as_secs()
        ),
    }
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

/// Applies pending migrations. They only ever add: a restart never loses data.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("database migration failed")
}

/// Creates `name` on the server behind `server_url` unless it exists.
pub async fn ensure_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(server_url)
        .await
        .context("cannot connect to PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}
