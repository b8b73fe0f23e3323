//! The database: the connection pool, migrations, the local default cluster and
//! the demo data.

pub mod local;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

pub use local::LocalCluster;

/// Opens the pool. Requests beyond `size` queue for a connection (up to 30 s)
/// rather than failing, so a burst of bookings waits its turn instead of crashing.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .context("cannot connect to PostgreSQL")
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

/// Loads the old service's demo shows, but only into a database without shows.
pub async fn load_demo(pool: &PgPool) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    // Two instances started with --demo at once must not both load it.
    sqlx::query("LOCK TABLE shows IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM shows)")
        .fetch_one(&mut *tx)
        .await?;
    if !empty {
        return Ok(false);
    }
    for (name, start, seats) in [
        ("Rock Concert 2025", "2025-12-31T20:00:00Z", 10),
        ("Jazz Night", "2025-12-15T19:30:00Z", 5),
    ] {
        crate::shows::insert(&mut tx, name, start.parse()?, seats).await?;
    }
    tx.commit().await?;
    Ok(true)
}
