//! Who may call from where: browser origins (CORS and WebSocket upgrades), the
//! `Host` a WebSocket upgrade names, and when a request counts as the operator's
//! own (admin routes without `ADMIN_TOKEN`). Pure decisions on headers, so that
//! each rule is unit-tested here.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::{FORWARDED, HOST, ORIGIN};

pub use crate::config::AllowedOrigins;

fn header<'h>(headers: &'h HeaderMap, name: &axum::http::HeaderName) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// `host[:port]` or `[v6]:port` without the port, lower-cased by the caller.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The host names (without ports) of the listed origins.
fn origin_hosts(origins: &AllowedOrigins) -> impl Iterator<Item = &str> {
    let list = match origins {
        AllowedOrigins::List(list) => list.as_slice(),
        _ => &[],
    };
    list.iter()
        .filter_map(|o| o.split_once("://"))
        .map(|(_, authority)| strip_port(authority))
}

fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim_end_matches('/');
    match (origin.split_once("://"), host) {
        (Some((_, authority)), Some(host)) => {
            !host.is_empty() && authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// Browsers send `Origin` with every WebSocket upgrade, and a page on another site
/// could otherwise open sessions (and book) with the visitor's network position.
/// Allowed: no `Origin` (non-browser clients), the same origin as the `Host`
/// header, and `ALLOWED_ORIGINS`.
pub fn origin_allowed(headers: &HeaderMap, allowed: &AllowedOrigins) -> Result<(), String> {
    let Some(origin) = header(headers, &ORIGIN) else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    if is_same_origin(origin, header(headers, &HOST)) || allowed.allows(origin) {
        Ok(())
    } else {
        Err(origin.to_string())
    }
}

/// Who may write from a browser page: `ALLOWED_ORIGINS` and `ALLOWED_HOSTS`.
#[derive(Clone)]
pub struct Writers {
    pub origins: AllowedOrigins,
    pub hosts: Vec<String>,
}

/// CORS only keeps a foreign page from *reading* answers: a "simple" request (a
/// form post, or `fetch` with `text/plain`) is still sent, with the visitor's
/// network position. So a request that may change something and carries a
/// foreign `Origin` is refused before any handler runs, whatever its content
/// type; and, as for upgrades, a page's request must name a `Host` this server
/// answers to (a DNS-rebinding page's `Origin` matches its `Host`). Scripts send
/// no `Origin` and are unaffected.
pub async fn refuse_cross_site_writes(
    axum::extract::State(writers): axum::extract::State<Writers>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::error::Error;
    use axum::http::Method;
    use axum::response::IntoResponse;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Err(origin) = origin_allowed(req.headers(), &writers.origins) {
            return Error::OriginNotAllowed(origin).into_response();
        }
        if let Err(host) = host_allowed(req.headers(), &writers.hosts, &writers.origins) {
            return Error::Forbidden(format!(
                "host '{host}' is not one this server answers to; add it to ALLOWED_HOSTS"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// A DNS-rebinding page has the attacker's name in both `Origin` and `Host`, so
/// the origin check alone passes it. A browser's upgrade (one with `Origin`) must
/// therefore also name a host we answer to: an IP address, `localhost`, a host of
/// `ALLOWED_ORIGINS`, or one of `ALLOWED_HOSTS`.
pub fn host_allowed(
    headers: &HeaderMap,
    allowed_hosts: &[String],
    origins: &AllowedOrigins,
) -> Result<(), String> {
    if headers.get(ORIGIN).is_none() || *origins == AllowedOrigins::Any {
        return Ok(());
    }
    let raw = header(headers, &HOST)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = strip_port(&raw);
    let known = host.parse::<IpAddr>().is_ok()
        || host == "localhost"
        || allowed_hosts.iter().any(|h| h == host)
        || origin_hosts(origins).any(|h| h.eq_ignore_ascii_case(host));
    if known { Ok(()) } else { Err(raw) }
}

/// Without `ADMIN_TOKEN`, admin routes answer only the operator at this machine:
/// a loopback connection that was not forwarded by a proxy, names a loopback host
/// (not a rebinding name), and comes from no other site's page. Returns why not.
pub fn local_operator(headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<(), &'static str> {
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return Err("admin routes answer loopback clients only");
    }
    let proxied = headers.contains_key(FORWARDED)
        || headers.contains_key("x-forwarded-for")
        || headers.contains_key("x-real-ip");
    if proxied {
        return Err("a proxied request is not the operator's own");
    }
    let raw = header(headers, &HOST)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = strip_port(&raw);
    let loopback_host =
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback_host {
        return Err("the Host header does not name this machine");
    }
    if let Some(origin) = header(headers, &ORIGIN)
        && !is_same_origin(origin, Some(&raw))
    {
        return Err("a request from another site's page is not the operator's own");
    }
    Ok(())
}

/// The CORS policy of the REST API: `ALLOWED_ORIGINS` get the
/// `Access-Control-Allow-*` headers their pages need (bearer tokens in
/// `Authorization`, JSON bodies); nobody else does. No cookies are used, so no
/// credentials are allowed, which is also what makes `*` safe to offer.
pub fn cors(allowed: &AllowedOrigins) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = match allowed {
        AllowedOrigins::SameOriginOnly => return None,
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(list) => AllowOrigin::list(list.iter().filter_map(|o| o.parse().ok())),
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-booking-token"),
                HeaderName::from_static("idempotency-key"),
            ])
            // Pages may read the request id (for support) and when to retry.
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn origins_are_checked_against_the_host_and_the_allow_list() {
        let list = AllowedOrigins::List(vec!["https://tickets.example.com".into()]);
        let none = AllowedOrigins::SameOriginOnly;
        assert!(origin_allowed(&headers(&[("host", "127.0.0.1:3000")]), &none).is_ok());
        let same = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(origin_allowed(&same, &none).is_ok());
        let evil = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example"),
        ]);
        assert!(origin_allowed(&evil, &none).is_err());
        assert!(origin_allowed(&evil, &AllowedOrigins::Any).is_ok());
        let listed = headers(&[
            ("host", "api.example.com"),
            ("origin", "https://tickets.example.com"),
        ]);
        assert!(origin_allowed(&listed, &list).is_ok());
        let null = headers(&[("host", "127.0.0.1:3000"), ("origin", "null")]);
        assert!(origin_allowed(&null, &list).is_err());
    }

    #[test]
    fn a_rebinding_name_is_refused_but_addresses_and_known_names_pass() {
        let none = AllowedOrigins::SameOriginOnly;
        let rebinding = headers(&[
            ("host", "attacker.example:3000"),
            ("origin", "http://attacker.example:3000"),
        ]);
        assert!(host_allowed(&rebinding, &[], &none).is_err());
        assert!(host_allowed(&rebinding, &["attacker.example".into()], &none).is_ok());
        for host in ["127.0.0.1:3000", "localhost:3000", "[::1]:3000", "10.1.2.3"] {
            let h = headers(&[("host", host), ("origin", "http://x")]);
            assert!(host_allowed(&h, &[], &none).is_ok(), "{host}");
        }
        let script = headers(&[("host", "boxoffice.internal:3000")]);
        assert!(
            host_allowed(&script, &[], &none).is_ok(),
            "no Origin, no browser"
        );
        let list = AllowedOrigins::List(vec!["https://tickets.example.com".into()]);
        let listed = headers(&[
            ("host", "tickets.example.com"),
            ("origin", "https://tickets.example.com"),
        ]);
        assert!(host_allowed(&listed, &[], &list).is_ok());
    }

    #[test]
    fn only_the_operators_own_requests_pass_without_a_token() {
        let local: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5555".parse().unwrap();
        let plain = headers(&[("host", "127.0.0.1:3000")]);
        assert!(local_operator(&plain, Some(local)).is_ok());
        assert!(
            local_operator(
                &headers(&[
                    ("host", "localhost:3000"),
                    ("origin", "http://localhost:3000")
                ]),
                Some(local)
            )
            .is_ok()
        );
        assert!(local_operator(&plain, Some(remote)).is_err());
        assert!(local_operator(&plain, None).is_err());
        for refused in [
            headers(&[
                ("host", "127.0.0.1:3000"),
                ("x-forwarded-for", "203.0.113.9"),
            ]),
            headers(&[("host", "127.0.0.1:3000"), ("forwarded", "for=203.0.113.9")]),
            headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "https://evil.example"),
            ]),
            headers(&[("host", "attacker.example:3000")]),
        ] {
            assert!(
                local_operator(&refused, Some(local)).is_err(),
                "{refused:?}"
            );
        }
    }
}
