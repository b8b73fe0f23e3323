//! Logging setup: `tracing` with a filter from RUST_LOG, as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Fails (naming RUST_LOG) on a malformed filter.
/// Colours only when writing to a terminal (log files and collectors get plain
/// text); PostgreSQL's notices (such as "relation _sqlx_migrations already exists,
/// skipping" on every start) only at warn and above unless RUST_LOG asks for sqlx.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let mut directives = filter.to_string();
    if !filter.contains("sqlx") {
        directives.push_str(",sqlx::postgres::notice=warn");
    }
    let parsed =
        EnvFilter::try_new(&directives).map_err(|e| format!("invalid RUST_LOG '{filter}': {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(true);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
