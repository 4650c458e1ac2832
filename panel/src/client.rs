//! Who is asking: the client address and whether the browser reached us over TLS.
//!
//! The peer address of the TCP connection, unless that peer is one of `trusted_proxies`:
//! then the last hop of `X-Forwarded-For` (the address the proxy itself saw; earlier hops
//! are written by the client and prove nothing), and `X-Forwarded-Proto: https` makes the
//! session cookie `Secure`. Headers from any other peer are ignored.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The peer address of the connection, put into each request's extensions by the server.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The client as the panel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The browser's (or script's) address: the remote IP for Dovecot, the audit line and
    /// the sign-in limit.
    pub ip: IpAddr,
    /// The request came over TLS through a trusted proxy: cookies get `Secure`.
    pub secure: bool,
}

/// Works out the client of a request from its peer and headers.
pub fn client(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> Client {
    let peer = canonical(peer);
    if !trusted_proxies.iter().any(|p| canonical(*p) == peer) {
        return Client {
            ip: peer,
            secure: false,
        };
    }
    let ip = last_value(headers, "x-forwarded-for")
        .and_then(|v| parse_hop(&v))
        .map(canonical)
        .unwrap_or(peer);
    let secure =
        last_value(headers, "x-forwarded-proto").is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Client { ip, secure }
}

/// The last comma-separated item over all instances of a header.
fn last_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let last = headers.get_all(name).iter().next_back()?;
    let text = last.to_str().ok()?;
    let item = text.rsplit(',').next()?.trim();
    (!item.is_empty()).then(|| item.to_string())
}

/// One `X-Forwarded-For` hop: an address, maybe `[v6]` or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, as a dual-stack socket reports IPv4 peers)
/// is the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The client the panel should see.
    fn seen(address: &str, secure: bool) -> Client {
        Client {
            ip: ip(address),
            secure,
        }
    }

    #[test]
    fn without_trusted_proxies_forwarded_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = client(ip("198.51.100.1"), &h, &[]);
        assert_eq!(c, seen("198.51.100.1", false));
    }

    #[test]
    fn a_peer_that_is_not_trusted_cannot_forward() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = client(ip("198.51.100.1"), &h, &[ip("127.0.0.1")]);
        assert_eq!(c, seen("198.51.100.1", false));
    }

    #[test]
    fn a_trusted_proxy_forwards_its_last_hop_and_the_scheme() {
        let h = headers(&[
            ("x-forwarded-for", "10.9.9.9, 192.0.2.7"),
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = client(ip("127.0.0.1"), &h, &[ip("127.0.0.1")]);
        assert_eq!(c, seen("203.0.113.9", true));
    }

    #[test]
    fn a_trusted_proxy_without_headers_is_the_client() {
        let c = client(
            ip("::ffff:127.0.0.1"),
            &HeaderMap::new(),
            &[ip("127.0.0.1")],
        );
        assert_eq!(c, seen("127.0.0.1", false));
    }

    #[test]
    fn garbage_in_the_header_falls_back_to_the_peer() {
        let h = headers(&[
            ("x-forwarded-for", "unknown"),
            ("x-forwarded-proto", "http"),
        ]);
        let c = client(ip("127.0.0.1"), &h, &[ip("127.0.0.1")]);
        assert_eq!(c, seen("127.0.0.1", false));
    }

    #[test]
    fn hops_with_ports_and_brackets_are_read() {
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("192.0.2.1:80"), Some(ip("192.0.2.1")));
    }
}
