//! The HTTP server's address and limits, and who may call it: handed whole to
//! the listener and the router.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use clap::Args;

use super::value::{limit, list, number, seconds};

#[derive(Debug, Args)]
pub(super) struct HttpArgs {
    /// Address to listen on: an IP address, or localhost for both loopback
    /// addresses (127.0.0.1 and ::1).
    #[arg(long, env = "HOST", default_value = "localhost")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value = "3000")]
    port: String,
    /// Most plain HTTP connections open at once (WebSocket sessions are counted by
    /// MAX_CONNECTIONS); further clients wait in the listen backlog.
    #[arg(long, env = "MAX_HTTP_CONNECTIONS", default_value = "8000")]
    max_http_connections: String,
    /// Seconds a client has to send a request's headers (idle keep-alive
    /// connections are closed after the same time).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value = "10")]
    http_header_timeout_secs: String,
    /// Seconds a request (body included) may take before it is answered 408.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECS", default_value = "30")]
    http_request_timeout_secs: String,
    /// HTTP requests per second per client address (bursts of twice that), every
    /// route and method counted (pages, WebSocket upgrades and unknown routes too);
    /// 0 turns the limit off.
    #[arg(long, env = "REST_REQUESTS_PER_SEC", default_value = "200")]
    rest_requests_per_sec: String,
    /// Proxies whose X-Forwarded-For is believed, comma-separated addresses or
    /// networks (10.0.0.0/8). Unset: forwarded headers are ignored and limits key
    /// on the connection's address.
    #[arg(long, env = "TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
    /// Browser origins allowed to call the REST API (CORS) and open WebSocket
    /// sessions, comma-separated, or * for any (unset: same-origin pages and
    /// non-browser clients only).
    #[arg(long, env = "ALLOWED_ORIGINS")]
    allowed_origins: Option<String>,
    /// Host names (besides the listen address, localhost and the ALLOWED_ORIGINS
    /// hosts) that WebSocket upgrades may name in their Host header, comma-separated.
    #[arg(long, env = "ALLOWED_HOSTS")]
    allowed_hosts: Option<String>,
}

/// Where the server listens, what one client may take of it, and who may call it.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: Host,
    pub port: u16,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    /// `None`: no per-address limit on requests.
    pub requests_per_sec: Option<NonZeroU32>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Browser origins (besides same-origin pages) allowed to call the API and
    /// open WebSocket sessions.
    pub allowed_origins: AllowedOrigins,
    /// Extra Host names WebSocket upgrades may use.
    pub allowed_hosts: Vec<String>,
}

/// `HOST`: one address, or both loopback addresses, because `localhost` resolves
/// to `::1` first on some machines and to `127.0.0.1` on others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Localhost,
    Addr(IpAddr),
}

impl Host {
    pub fn is_loopback(self) -> bool {
        self.addrs().iter().all(IpAddr::is_loopback)
    }

    /// The addresses to listen on, the one that must work first.
    pub fn addrs(self) -> Vec<IpAddr> {
        match self {
            Host::Localhost => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
            Host::Addr(addr) => vec![addr],
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Localhost => f.write_str("localhost"),
            Host::Addr(addr) => addr.fmt(f),
        }
    }
}

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

impl HttpArgs {
    pub(super) fn check(&self) -> Result<HttpSettings, String> {
        Ok(HttpSettings {
            host: host(&self.host)?,
            port: number("PORT", &self.port, 0, 65_535)?,
            max_connections: number(
                "MAX_HTTP_CONNECTIONS",
                &self.max_http_connections,
                1,
                10_000_000,
            )?,
            header_timeout: seconds(
                "HTTP_HEADER_TIMEOUT_SECS",
                &self.http_header_timeout_secs,
                1,
                3600,
            )?,
            request_timeout: seconds(
                "HTTP_REQUEST_TIMEOUT_SECS",
                &self.http_request_timeout_secs,
                1,
                3600,
            )?,
            requests_per_sec: limit(
                "REST_REQUESTS_PER_SEC",
                &self.rest_requests_per_sec,
                1_000_000,
            )?,
            trusted_proxies: trusted_proxies(self.trusted_proxies.as_deref())?,
            allowed_origins: allowed_origins(self.allowed_origins.as_deref())?,
            allowed_hosts: list(self.allowed_hosts.as_deref())
                .map(str::to_ascii_lowercase)
                .collect(),
        })
    }
}

fn host(raw: &str) -> Result<Host, String> {
    if raw.trim().eq_ignore_ascii_case("localhost") {
        return Ok(Host::Localhost);
    }
    raw.trim().parse().map(Host::Addr).map_err(|_| {
        format!(
            "invalid HOST '{raw}': expected localhost or an IP address such as 127.0.0.1 or 0.0.0.0"
        )
    })
}

fn allowed_origins(raw: Option<&str>) -> Result<AllowedOrigins, String> {
    let origins: Vec<String> = list(raw)
        .map(|o| o.trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.iter().any(|o| o == "*") {
        return Ok(AllowedOrigins::Any);
    }
    if origins.is_empty() {
        return Ok(AllowedOrigins::SameOriginOnly);
    }
    if let Some(bad) = origins
        .iter()
        .find(|o| !o.starts_with("http://") && !o.starts_with("https://"))
    {
        return Err(format!(
            "invalid ALLOWED_ORIGINS entry '{bad}': expected * or an origin such as https://tickets.example.com"
        ));
    }
    Ok(AllowedOrigins::List(origins))
}

/// `TRUSTED_PROXIES`: addresses (one host each) or networks.
fn trusted_proxies(raw: Option<&str>) -> Result<Vec<ipnet::IpNet>, String> {
    list(raw)
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
