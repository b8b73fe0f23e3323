//! What the instance tells its operators: logs and metrics.

use std::net::SocketAddr;

use clap::Args;

use super::value::non_empty;

#[derive(Debug, Args)]
pub(super) struct TelemetryArgs {
    /// Log filter, e.g. "info" or "boxoffice=debug,sqlx=warn".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    rust_log: String,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Serve GET /metrics on this address (host:port) instead of the main port.
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// Bearer token GET /metrics asks for. Unset: metrics are open.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Where `GET /metrics` is served: the main port when `None`.
    pub addr: Option<SocketAddr>,
    /// Bearer token for `GET /metrics`, when set.
    pub token: Option<String>,
}

impl TelemetryArgs {
    pub(super) fn log(&self) -> Result<LogSettings, String> {
        let format = match self.log_format.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(format!(
                    "invalid LOG_FORMAT '{other}': expected text or json"
                ));
            }
        };
        Ok(LogSettings {
            filter: self.rust_log.clone(),
            format,
        })
    }

    pub(super) fn metrics(&self) -> Result<MetricsSettings, String> {
        let addr = match non_empty(self.metrics_addr.as_deref()) {
            Some(addr) => Some(addr.parse().map_err(|_| {
                format!("invalid METRICS_ADDR '{addr}': use host:port, e.g. 127.0.0.1:9100")
            })?),
            None => None,
        };
        Ok(MetricsSettings {
            addr,
            token: non_empty(self.metrics_token.as_deref()),
        })
    }
}
