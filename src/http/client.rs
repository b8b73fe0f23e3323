//! Who is on the other end: the client address that per-address limits key on.
//!
//! The connection's peer, unless the peer is one of `TRUSTED_PROXIES`: then the
//! `X-Forwarded-For` chain is read from the right (each proxy appends the address
//! it received from), skipping further trusted proxies, and the first address no
//! trusted proxy vouches for is the client. Without trusted proxies, forwarded
//! headers are ignored: anyone can write them.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client's address, as the limits see it (an IPv6 client as its /64, see
/// [`limit_key`]); every request carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address of a request that came from `peer`.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Several X-Forwarded-For headers are one list, in order.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        // A hop that is not an address ends the chain: what lies left of it was
        // written by someone no trusted proxy vouches for.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `203.0.113.9`, `[2001:db8::1]:443` or `203.0.113.9:1234`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// IPv4 addresses seen through an IPv6 socket (`::ffff:a.b.c.d`) as IPv4, so
/// that one client is one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Handlers take the address `identify` found; a request that did not come
/// through a socket (none does, outside unit tests) is the unspecified address.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))))
    }
}

/// The key per-address limits count under. An IPv6 client is its /64: one
/// subscriber is routinely given a whole /64 (2^64 addresses), so counting
/// single IPv6 addresses would let one client be as many clients as it likes.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Puts the request's [`ClientIp`] among its extensions.
pub async fn identify(
    State(trusted): State<std::sync::Arc<[IpNet]>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let ip = client_ip(req.headers(), canonical(peer.ip()), &trusted);
        req.extensions_mut().insert(ClientIp(limit_key(ip)));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_client_is_counted_as_its_slash_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(limit_key(ip("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let h = forwarded(&["203.0.113.9"]);
        assert_eq!(client_ip(&h, ip("198.51.100.1"), &[]), ip("198.51.100.1"));
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(&h, ip("198.51.100.1"), &trusted),
            ip("198.51.100.1"),
            "an untrusted peer's header is not believed"
        );
        assert_eq!(client_ip(&h, ip("10.1.2.3"), &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn the_chain_is_read_from_the_right_past_trusted_proxies_only() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client forged the first entry; the proxies appended the rest.
        let h = forwarded(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(client_ip(&h, ip("10.0.0.1"), &trusted), ip("203.0.113.9"));
        let garbage = forwarded(&["1.1.1.1, not-an-address, 10.0.0.2"]);
        assert_eq!(
            client_ip(&garbage, ip("10.0.0.1"), &trusted),
            ip("10.0.0.2"),
            "nothing left of a bad hop is believed"
        );
        assert_eq!(
            client_ip(&HeaderMap::new(), ip("10.0.0.1"), &trusted),
            ip("10.0.0.1")
        );
        let v6 = forwarded(&["[2001:db8::7]:5000"]);
        assert_eq!(client_ip(&v6, ip("10.0.0.1"), &trusted), ip("2001:db8::7"));
        let mapped = forwarded(&["::ffff:203.0.113.9"]);
        assert_eq!(
            client_ip(&mapped, ip("10.0.0.1"), &trusted),
            ip("203.0.113.9")
        );
    }
}
