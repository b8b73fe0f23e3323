//! Where the database is, or where boxoffice keeps its own: handed whole to `db`.

use std::path::PathBuf;

use clap::Args;

use super::value::{non_empty, number};

#[derive(Debug, Args)]
pub(super) struct DatabaseArgs {
    /// PostgreSQL URL. Unset: boxoffice runs its own local cluster in DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the local PostgreSQL cluster lives when DATABASE_URL is unset.
    #[arg(long, env = "DATA_DIR", default_value = "./data/postgres")]
    data_dir: PathBuf,
    /// Directory holding initdb and pg_ctl (default: PATH, pg_config, /usr/lib/postgresql).
    #[arg(long, env = "PG_BIN")]
    pg_bin: Option<PathBuf>,
    /// Most PostgreSQL connections this instance opens.
    #[arg(long, env = "DB_POOL_SIZE", default_value = "16")]
    db_pool_size: String,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `None`: the local cluster in `data_dir`.
    pub url: Option<String>,
    pub data_dir: PathBuf,
    pub pg_bin: Option<PathBuf>,
    pub pool_size: u32,
}

impl DatabaseArgs {
    pub(super) fn check(&self) -> Result<DatabaseSettings, String> {
        Ok(DatabaseSettings {
            url: non_empty(self.database_url.as_deref()),
            data_dir: self.data_dir.clone(),
            pg_bin: self.pg_bin.clone(),
            pool_size: number("DB_POOL_SIZE", &self.db_pool_size, 1, 1000)?,
        })
    }
}
