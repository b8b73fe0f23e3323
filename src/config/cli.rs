//! The command line: every setting's flag, environment variable, default and help,
//! written once. Values stay strings here; `Config::from_cli` checks them, so that
//! a bad one is reported in one line naming the variable.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "boxoffice",
    version,
    about = "Real-time, concurrency-safe ticket booking server"
)]
pub(super) struct Cli {
    /// PostgreSQL URL. Unset: boxoffice runs its own local cluster in DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(super) database_url: Option<String>,
    /// Where the local PostgreSQL cluster lives when DATABASE_URL is unset.
    #[arg(long, env = "DATA_DIR", default_value = "./data/postgres")]
    pub(super) data_dir: PathBuf,
    /// Directory holding initdb and pg_ctl (default: PATH, pg_config, /usr/lib/postgresql).
    #[arg(long, env = "PG_BIN")]
    pub(super) pg_bin: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub(super) host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value = "3000")]
    pub(super) port: String,
    /// How long a hold (immediate_confirm: false) lasts before it expires.
    #[arg(long, env = "HOLD_TTL_SECS", default_value = "120")]
    pub(super) hold_ttl_secs: String,
    /// Most seats one booking may take.
    #[arg(long, env = "MAX_SEATS_PER_BOOKING", default_value = "10")]
    pub(super) max_seats_per_booking: String,
    /// Most seats a show may have.
    #[arg(long, env = "MAX_SEATS_PER_SHOW", default_value = "100000")]
    pub(super) max_seats_per_show: String,
    /// Most seats one buyer may have in a show (held plus sold; unset: no limit).
    #[arg(long, env = "MAX_SEATS_PER_USER")]
    pub(super) max_seats_per_user: Option<String>,
    /// Most live holds one buyer may have in a show (unset: no limit).
    #[arg(long, env = "MAX_HOLDS_PER_USER")]
    pub(super) max_holds_per_user: Option<String>,
    /// AUTH=none: most live holds the requests of one client address may have in
    /// a show, whatever user_ids they name (0: no limit).
    #[arg(long, env = "MAX_HOLDS_PER_ADDRESS", default_value = "20")]
    pub(super) max_holds_per_address: String,
    /// Seconds a show's booking queue and its workers stay after the show's last
    /// booking (they start again with the next one).
    #[arg(long, env = "BOOKING_QUEUE_IDLE_SECS", default_value = "30")]
    pub(super) booking_queue_idle_secs: String,
    /// How buyers are identified: none (user_id from the request) or jwt (the sub of
    /// a verified JWT).
    #[arg(long, env = "AUTH", default_value = "none")]
    pub(super) auth: String,
    /// AUTH=jwt: the HS256 secret (32+ characters).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub(super) jwt_secret: Option<String>,
    /// AUTH=jwt: a PEM public key file (RSA for RS256, EC P-256 for ES256), instead of JWT_SECRET.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub(super) jwt_public_key_file: Option<PathBuf>,
    /// AUTH=jwt: the issuer (iss) tokens must name, if set.
    #[arg(long, env = "JWT_ISSUER")]
    pub(super) jwt_issuer: Option<String>,
    /// AUTH=jwt: the audience (aud) tokens must name, if set.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub(super) jwt_audience: Option<String>,
    /// AUTH=jwt: seconds of clock difference allowed when checking exp and nbf.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value = "5")]
    pub(super) jwt_leeway_secs: String,
    /// Bearer token for /admin routes. Unset: admin routes answer loopback clients only.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub(super) admin_token: Option<String>,
    /// Serve GET /metrics on this address (host:port) instead of the main port.
    #[arg(long, env = "METRICS_ADDR")]
    pub(super) metrics_addr: Option<String>,
    /// Bearer token GET /metrics asks for. Unset: metrics are open.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub(super) metrics_token: Option<String>,
    /// Most PostgreSQL connections this instance opens.
    #[arg(long, env = "DB_POOL_SIZE", default_value = "16")]
    pub(super) db_pool_size: String,
    /// Most WebSocket sessions this instance holds; more get HTTP 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "10000")]
    pub(super) max_connections: String,
    /// Browser origins allowed to call the REST API (CORS) and open WebSocket
    /// sessions, comma-separated, or * for any (unset: same-origin pages and
    /// non-browser clients only).
    #[arg(long, env = "ALLOWED_ORIGINS")]
    pub(super) allowed_origins: Option<String>,
    /// Seconds between protocol pings to each WebSocket client.
    #[arg(long, env = "WS_PING_INTERVAL_SECS", default_value = "20")]
    pub(super) ws_ping_interval_secs: String,
    /// Seconds of silence after which a WebSocket session is closed.
    #[arg(long, env = "WS_IDLE_TIMEOUT_SECS", default_value = "60")]
    pub(super) ws_idle_timeout_secs: String,
    /// Seconds a WebSocket write may wait for a client that stopped reading before
    /// the session is closed (4001).
    #[arg(long, env = "WS_SEND_TIMEOUT_SECS", default_value = "10")]
    pub(super) ws_send_timeout_secs: String,
    /// Host names (besides the listen address, localhost and the ALLOWED_ORIGINS
    /// hosts) that WebSocket upgrades may name in their Host header, comma-separated.
    #[arg(long, env = "ALLOWED_HOSTS")]
    pub(super) allowed_hosts: Option<String>,
    /// Most plain HTTP connections open at once (WebSocket sessions are counted by
    /// MAX_CONNECTIONS); further clients wait in the listen backlog.
    #[arg(long, env = "MAX_HTTP_CONNECTIONS", default_value = "8000")]
    pub(super) max_http_connections: String,
    /// Seconds a client has to send a request's headers (idle keep-alive
    /// connections are closed after the same time).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value = "10")]
    pub(super) http_header_timeout_secs: String,
    /// Seconds a request (body included) may take before it is answered 408.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECS", default_value = "30")]
    pub(super) http_request_timeout_secs: String,
    /// HTTP requests per second per client address (bursts of twice that), every
    /// route and method counted (pages, WebSocket upgrades and unknown routes too);
    /// 0 turns the limit off.
    #[arg(long, env = "REST_REQUESTS_PER_SEC", default_value = "200")]
    pub(super) rest_requests_per_sec: String,
    /// Commands per second each WebSocket session may send (bursts of twice that).
    #[arg(long, env = "WS_COMMANDS_PER_SEC", default_value = "20")]
    pub(super) ws_commands_per_sec: String,
    /// Commands per second all WebSocket sessions of one client address may send
    /// together (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "WS_COMMANDS_PER_ADDRESS_PER_SEC", default_value = "100")]
    pub(super) ws_commands_per_address_per_sec: String,
    /// Most WebSocket sessions one client address may hold at once; more get 429
    /// TOO_MANY_SESSIONS. 0 turns the cap off. Buyers behind one NAT share an
    /// address: raise it for venues whose crowd arrives through one.
    #[arg(long, env = "MAX_SESSIONS_PER_ADDRESS", default_value = "200")]
    pub(super) max_sessions_per_address: String,
    /// Proxies whose X-Forwarded-For is believed, comma-separated addresses or
    /// networks (10.0.0.0/8). Unset: forwarded headers are ignored and limits key
    /// on the connection's address.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub(super) trusted_proxies: Option<String>,
    /// Log filter, e.g. "info" or "boxoffice=debug,sqlx=warn".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub(super) rust_log: String,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub(super) log_format: String,
    /// Load the demo shows into an empty database, then serve.
    #[arg(long)]
    pub(super) demo: bool,
}
