//! Settings, from command-line flags, environment variables and a `.env` file, in
//! that order of precedence. Every value is checked here, so that a bad one stops
//! the server with a single line naming the variable.

mod auth;
mod booking;
mod cli;
mod database;
mod http;
mod telemetry;
mod value;
mod ws;

use clap::Parser;

use crate::auth::Auth;
pub use booking::{BookingRules, BuyerLimits};
use cli::Cli;
pub use database::DatabaseSettings;
pub use http::{AllowedOrigins, Host, HttpSettings};
pub use telemetry::{LogFormat, LogSettings, MetricsSettings};
pub use ws::WsSettings;

/// The checked configuration of one boxoffice instance, in groups: each group
/// goes whole to the part of the server that uses it.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub booking: BookingRules,
    /// How buyers are identified (`AUTH` and the `JWT_*` settings).
    pub auth: Auth,
    /// Bearer token for the admin routes.
    pub admin_token: Option<String>,
    /// Signs waiting-room admissions (`None`: the database keeps a generated one).
    pub admission_secret: Option<String>,
    pub ws: WsSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
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
        let auth = cli.auth.buyers()?;
        Ok(Config {
            database: cli.database.check()?,
            http: cli.http.check()?,
            booking: cli.booking.check(auth.is_jwt())?,
            admin_token: cli.auth.admin_token()?,
            admission_secret: cli.auth.admission_secret()?,
            auth,
            ws: cli.ws.check()?,
            log: cli.telemetry.log()?,
            metrics: cli.telemetry.metrics()?,
            demo: cli.demo,
        })
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
    use std::time::Duration;

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
        assert_eq!(c.http.port, 3000);
        assert_eq!(c.http.host, Host::Localhost);
        assert_eq!(c.booking.hold_ttl, Duration::from_secs(120));
        assert_eq!(c.booking.max_seats_per_booking, 10);
        assert_eq!(c.booking.max_seats_per_show, 100_000);
        assert_eq!(c.ws.send_timeout, Duration::from_secs(10));
        assert_eq!(c.http.max_connections, 8000);
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.request_timeout, Duration::from_secs(30));
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
