//! Settings, from command-line flags, environment variables and a `.env` file, in
//! that order of precedence. Every value is checked here, so that a bad one stops
//! the server with a single line naming the variable.

mod cli;

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

use crate::auth::{Auth, Verifier};
use crate::booking::BuyerLimits;
use cli::Cli;

/// `ALLOWED_ORIGINS`: browser origins besides same-origin pages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// Only same-origin pages (and clients that send no `Origin`).
    #[default]
    SameOriginOnly,
    /// These origins too, e.g. `https://tickets.example.com`.
    List(Vec<String>),
    /// `*`: any origin, as the old service allowed.
    Any,
}

impl AllowedOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::SameOriginOnly => false,
            AllowedOrigins::List(list) => list.iter().any(|o| o == origin),
            AllowedOrigins::Any => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The checked configuration of one boxoffice instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub pg_bin: Option<PathBuf>,
    pub host: IpAddr,
    pub port: u16,
    pub hold_ttl: Duration,
    pub max_seats_per_booking: usize,
    pub max_seats_per_show: i32,
    pub booking_queue_idle: Duration,
    /// MAX_SEATS_PER_USER and MAX_HOLDS_PER_USER.
    pub buyer_limits: BuyerLimits,
    pub admin_token: Option<String>,
    /// Where `GET /metrics` is served: the main port when `None`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Bearer token for `GET /metrics`, when set.
    pub metrics_token: Option<String>,
    /// How buyers are identified (AUTH and the JWT_* settings).
    pub auth: Auth,
    pub db_pool_size: u32,
    pub max_connections: usize,
    /// Browser origins (besides same-origin pages) allowed to call the API and
    /// open WebSocket sessions.
    pub allowed_origins: AllowedOrigins,
    pub ws_ping_interval: Duration,
    pub ws_idle_timeout: Duration,
    pub ws_commands_per_sec: u32,
    /// `None`: no limit on the commands of one address's sessions together.
    pub ws_commands_per_address_per_sec: Option<std::num::NonZeroU32>,
    /// `None`: no cap on the sessions of one address.
    pub max_sessions_per_address: Option<usize>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `None`: no per-address limit on the REST API.
    pub rest_requests_per_sec: Option<std::num::NonZeroU32>,
    pub ws_send_timeout: Duration,
    /// Extra Host names WebSocket upgrades may use.
    pub allowed_hosts: Vec<String>,
    pub max_http_connections: usize,
    pub http_header_timeout: Duration,
    pub http_request_timeout: Duration,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub demo: bool,
}

/// The defaults are the command line's own (`Cli` is the one place where each
/// setting's name, default and help are written), read without the environment.
impl Default for Config {
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["boxoffice"])
            .expect("the defaults parse");
        let cli = Cli::from_arg_matches(&matches).expect("the defaults fit the flags");
        Config::from_cli(cli).expect("the defaults are valid")
    }
}

impl Config {
    /// Reads `.env` (if present), the environment and the command line. Returns
    /// clap's own error for `--help`, `--version` and unknown flags.
    pub fn load() -> Result<Config, ConfigError> {
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError::Invalid(format!("cannot read .env: {e}")));
        }
        let cli = Cli::try_parse().map_err(ConfigError::Cli)?;
        Config::from_cli(cli).map_err(ConfigError::Invalid)
    }

    /// Like [`Config::load`], from explicit arguments and without `.env` (for tests).
    pub fn parse_from<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(ConfigError::Cli)?;
        Config::from_cli(cli).map_err(ConfigError::Invalid)
    }

    fn from_cli(cli: Cli) -> Result<Config, String> {
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let auth = auth_from(&cli)?;
        let admin_token = non_empty(cli.admin_token);
        if let Some(t) = &admin_token
            && t.len() < 16
        {
            return Err("invalid ADMIN_TOKEN: use at least 16 characters".into());
        }
        let metrics_addr = match non_empty(cli.metrics_addr) {
            Some(addr) => Some(addr.parse().map_err(|_| {
                format!("invalid METRICS_ADDR '{addr}': use host:port, e.g. 127.0.0.1:9100")
            })?),
            None => None,
        };
        let metrics_token = non_empty(cli.metrics_token);
        let hold_ttl_secs: u64 = parse("HOLD_TTL_SECS", &cli.hold_ttl_secs, 1, 86_400)?;
        let ping: u64 = parse("WS_PING_INTERVAL_SECS", &cli.ws_ping_interval_secs, 1, 3600)?;
        let idle: u64 = parse("WS_IDLE_TIMEOUT_SECS", &cli.ws_idle_timeout_secs, 1, 86_400)?;
        if idle <= ping {
            return Err(format!(
                "invalid WS_IDLE_TIMEOUT_SECS '{idle}': must be longer than WS_PING_INTERVAL_SECS ({ping})"
            ));
        }
        let allowed_origins = cli
            .allowed_origins
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect::<Vec<_>>();
        let allowed_origins = if allowed_origins.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else if allowed_origins.is_empty() {
            AllowedOrigins::SameOriginOnly
        } else {
            if let Some(bad) = allowed_origins
                .iter()
                .find(|o| !o.starts_with("http://") && !o.starts_with("https://"))
            {
                return Err(format!(
                    "invalid ALLOWED_ORIGINS entry '{bad}': expected * or an origin such as https://tickets.example.com"
                ));
            }
            AllowedOrigins::List(allowed_origins)
        };
        let log_format = match cli.log_format.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(format!(
                    "invalid LOG_FORMAT '{other}': expected text or json"
                ));
            }
        };
        Ok(Config {
            database_url: non_empty(cli.database_url),
            data_dir: cli.data_dir,
            pg_bin: cli.pg_bin,
            host: cli.host.parse().map_err(|_| {
                format!(
                    "invalid HOST '{}': expected an IP address such as 127.0.0.1 or 0.0.0.0",
                    cli.host
                )
            })?,
            port: parse("PORT", &cli.port, 0, 65_535)?,
            hold_ttl: Duration::from_secs(hold_ttl_secs),
            max_seats_per_booking: parse(
                "MAX_SEATS_PER_BOOKING",
                &cli.max_seats_per_booking,
                1,
                1000,
            )?,
            max_seats_per_show: parse("MAX_SEATS_PER_SHOW", &cli.max_seats_per_show, 1, 1_000_000)?,
            buyer_limits: BuyerLimits {
                max_seats: optional("MAX_SEATS_PER_USER", cli.max_seats_per_user, 1, 1_000_000)?,
                max_holds: optional("MAX_HOLDS_PER_USER", cli.max_holds_per_user, 1, 1_000_000)?,
                // Signed-in buyers are counted as buyers; only self-named ones by address.
                max_holds_per_address: Some(parse(
                    "MAX_HOLDS_PER_ADDRESS",
                    &cli.max_holds_per_address,
                    0,
                    1_000_000,
                )?)
                .filter(|n| *n > 0 && !auth.is_jwt()),
            },
            booking_queue_idle: Duration::from_secs(parse(
                "BOOKING_QUEUE_IDLE_SECS",
                &cli.booking_queue_idle_secs,
                1,
                86_400,
            )?),
            admin_token,
            metrics_addr,
            metrics_token,
            auth,
            db_pool_size: parse("DB_POOL_SIZE", &cli.db_pool_size, 1, 1000)?,
            max_connections: parse("MAX_CONNECTIONS", &cli.max_connections, 1, 10_000_000)?,
            allowed_origins,
            ws_ping_interval: Duration::from_secs(ping),
            ws_idle_timeout: Duration::from_secs(idle),
            ws_commands_per_sec: parse(
                "WS_COMMANDS_PER_SEC",
                &cli.ws_commands_per_sec,
                1,
                1_000_000,
            )?,
            ws_commands_per_address_per_sec: std::num::NonZeroU32::new(parse(
                "WS_COMMANDS_PER_ADDRESS_PER_SEC",
                &cli.ws_commands_per_address_per_sec,
                0,
                1_000_000,
            )?),
            max_sessions_per_address: Some(parse(
                "MAX_SESSIONS_PER_ADDRESS",
                &cli.max_sessions_per_address,
                0,
                10_000_000,
            )?)
            .filter(|n| *n > 0),
            trusted_proxies: trusted_proxies(cli.trusted_proxies.as_deref())?,
            rest_requests_per_sec: std::num::NonZeroU32::new(parse(
                "REST_REQUESTS_PER_SEC",
                &cli.rest_requests_per_sec,
                0,
                1_000_000,
            )?),
            ws_send_timeout: Duration::from_secs(parse(
                "WS_SEND_TIMEOUT_SECS",
                &cli.ws_send_timeout_secs,
                1,
                3600,
            )?),
            allowed_hosts: cli
                .allowed_hosts
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            max_http_connections: parse(
                "MAX_HTTP_CONNECTIONS",
                &cli.max_http_connections,
                1,
                10_000_000,
            )?,
            http_header_timeout: Duration::from_secs(parse(
                "HTTP_HEADER_TIMEOUT_SECS",
                &cli.http_header_timeout_secs,
                1,
                3600,
            )?),
            http_request_timeout: Duration::from_secs(parse(
                "HTTP_REQUEST_TIMEOUT_SECS",
                &cli.http_request_timeout_secs,
                1,
                3600,
            )?),
            log_filter: cli.rust_log,
            log_format,
            demo: cli.demo,
        })
    }
}

fn parse<T>(name: &str, raw: &str, min: T, max: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(format!(
            "invalid {name} '{raw}': expected a whole number from {min} to {max}"
        )),
    }
}

/// `TRUSTED_PROXIES`: addresses (one host each) or networks.
fn trusted_proxies(raw: Option<&str>) -> Result<Vec<ipnet::IpNet>, String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!(
                        "invalid TRUSTED_PROXIES entry '{p}': expected an address or a network such as 10.0.0.0/8"
                    )
                })
        })
        .collect()
}

/// AUTH and the JWT_* settings, checked together.
fn auth_from(cli: &Cli) -> Result<Auth, String> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let (issuer, audience) = (set(&cli.jwt_issuer), set(&cli.jwt_audience));
    let leeway = parse("JWT_LEEWAY_SECS", &cli.jwt_leeway_secs, 0, 300)?;
    let expect = crate::auth::Expect {
        issuer: issuer.as_deref(),
        audience: audience.as_deref(),
        leeway,
    };
    match cli.auth.to_ascii_lowercase().as_str() {
        "none" => Ok(Auth::None),
        "jwt" => {
            let verifier = match (set(&cli.jwt_secret), &cli.jwt_public_key_file) {
                (Some(secret), None) if secret.len() >= 32 => {
                    Verifier::hs256(secret.as_bytes(), &expect)
                }
                (Some(_), None) => {
                    return Err("invalid JWT_SECRET: use at least 32 characters".into());
                }
                (None, Some(file)) => Verifier::public_key(file, &expect)?,
                _ => {
                    return Err(
                        "AUTH=jwt needs exactly one of JWT_SECRET and JWT_PUBLIC_KEY_FILE".into(),
                    );
                }
            };
            Ok(Auth::Jwt(std::sync::Arc::new(verifier)))
        }
        other => Err(format!("invalid AUTH '{other}': expected none or jwt")),
    }
}

/// An optional number: unset or empty means none.
fn optional<T>(name: &str, raw: Option<String>, min: T, max: T) -> Result<Option<T>, String>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match raw.filter(|v| !v.trim().is_empty()) {
        Some(raw) => parse(name, &raw, min, max).map(Some),
        None => Ok(None),
    }
}

#[derive(Debug)]
pub enum ConfigError {
    /// `--help`, `--version`, or a malformed command line: clap prints it.
    Cli(clap::Error),
    /// A value that parsed but makes no sense; one line, naming the variable.
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(args: &[&str]) -> String {
        let mut argv = vec!["boxoffice"];
        argv.extend_from_slice(args);
        match Config::parse_from(argv) {
            Err(ConfigError::Invalid(msg)) => msg,
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = Config::default();
        assert_eq!(c.port, 3000);
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.hold_ttl, Duration::from_secs(120));
        assert_eq!(c.max_seats_per_booking, 10);
        assert_eq!(c.max_seats_per_show, 100_000);
        assert_eq!(c.ws_send_timeout, Duration::from_secs(10));
        assert_eq!(c.max_http_connections, 8000);
        assert_eq!(c.http_header_timeout, Duration::from_secs(10));
        assert_eq!(c.http_request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_their_variable_on_one_line() {
        for (args, name) in [
            (&["--port", "http"][..], "PORT"),
            (&["--port", "70000"][..], "PORT"),
            (&["--host", "localhost:3000"][..], "HOST"),
            (&["--hold-ttl-secs", "0"][..], "HOLD_TTL_SECS"),
            (&["--max-seats-per-booking=-1"][..], "MAX_SEATS_PER_BOOKING"),
            (&["--max-seats-per-show", "lots"][..], "MAX_SEATS_PER_SHOW"),
            (&["--db-pool-size", "0"][..], "DB_POOL_SIZE"),
            (&["--log-format", "xml"][..], "LOG_FORMAT"),
            (&["--admin-token", "short"][..], "ADMIN_TOKEN"),
            (&["--max-connections", "0"][..], "MAX_CONNECTIONS"),
            (&["--max-seats-per-user", "0"][..], "MAX_SEATS_PER_USER"),
            (&["--auth", "ldap"][..], "AUTH"),
            (
                &["--auth", "jwt", "--jwt-secret", "short"][..],
                "JWT_SECRET",
            ),
            (&["--auth", "jwt"][..], "JWT_SECRET"),
            (&["--max-holds-per-user", "x"][..], "MAX_HOLDS_PER_USER"),
            (&["--allowed-origins", "example.com"][..], "ALLOWED_ORIGINS"),
            (&["--trusted-proxies", "10.0.0.0/33"][..], "TRUSTED_PROXIES"),
            (
                &["--max-holds-per-address", "many"][..],
                "MAX_HOLDS_PER_ADDRESS",
            ),
            (&["--jwt-leeway-secs", "3600"][..], "JWT_LEEWAY_SECS"),
            (
                &["--max-sessions-per-address=-1"][..],
                "MAX_SESSIONS_PER_ADDRESS",
            ),
            (
                &[
                    "--ws-idle-timeout-secs",
                    "5",
                    "--ws-ping-interval-secs",
                    "10",
                ][..],
                "WS_IDLE_TIMEOUT_SECS",
            ),
            (
                &["--ws-commands-per-sec", "none"][..],
                "WS_COMMANDS_PER_SEC",
            ),
        ] {
            let msg = invalid(args);
            assert!(msg.contains(name), "{msg:?} should name {name}");
            assert!(!msg.contains('\n'), "{msg:?} should be one line");
        }
    }
}
