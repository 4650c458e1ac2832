//! The key a client address (PAM_RHOST) is known by in the state, for replay, reuse and the
//! throttle: one key per IPv4 client (also behind NAT64), per IPv6 /64, per host name.

use crate::config::Settings;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest client key kept in the state; longer PAM_RHOST values (host names) are hashed, so
/// that the state stays small whatever a service passes (see `MAX_FILE_BYTES`).
pub const MAX_CLIENT_KEY: usize = 64;

/// The key a client address (PAM_RHOST) is known by, for replay, reuse and the throttle:
///
/// - an IPv4 address as it is;
/// - an IPv6 address that carries an IPv4 address, by that IPv4 address: IPv4-mapped
///   (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`, SIIT, RFC 7915), NAT64
///   (`64:ff9b::/96`, RFC 6052, and the network-specific prefixes of `nat64_prefixes`) and
///   IPv4-compatible (`::a.b.c.d`, deprecated) — behind a NAT64 each IPv4 client is its own;
/// - loopback (`::1`), unspecified (`::`) and link-local (`fe80::/10`) IPv6 addresses as the
///   whole address, with the zone they came with (`fe80::1%eth0`: the same address on another
///   interface is another host); a zone on any other address is ignored;
/// - any other IPv6 address by its /64 (one host's or one site's privacy addresses share it);
/// - anything else (a host name) as it is, or as `sha256:<128 bits>` when longer than
///   [`MAX_CLIENT_KEY`] or holding a character outside [`crate::state::is_state_text`].
pub fn client_key(rhost: &str, settings: &Settings) -> String {
    if rhost.len() > MAX_CLIENT_KEY || !crate::state::is_state_text(rhost) {
        let digest = Sha256::digest(rhost.as_bytes());
        return format!(
            "sha256:{}",
            digest[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    let (address, zone) = match rhost.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (rhost, None),
    };
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match carried_ipv4(v6, &settings.nat64_prefixes) {
            Some(v4) => v4.to_string(),
            None if v6.is_loopback() || v6.is_unspecified() || v6.is_unicast_link_local() => {
                match zone {
                    Some(zone) => format!("{v6}%{zone}"),
                    None => v6.to_string(),
                }
            }
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        // An IPv4 address is already canonical (the parser takes no other form) and takes no
        // zone; a host name is what it is.
        _ => rhost.to_string(),
    }
}

/// The IPv4 address in the last 32 bits of `v6`, when its first 96 bits say it carries one
/// (see [`client_key`]); `nat64_prefixes` are /96 prefixes with their last 32 bits zero.
fn carried_ipv4(v6: Ipv6Addr, nat64_prefixes: &[Ipv6Addr]) -> Option<Ipv4Addr> {
    const MAPPED: [u16; 6] = [0, 0, 0, 0, 0, 0xffff];
    const TRANSLATED: [u16; 6] = [0, 0, 0, 0, 0xffff, 0];
    const NAT64_WELL_KNOWN: [u16; 6] = [0x64, 0xff9b, 0, 0, 0, 0];
    const COMPATIBLE: [u16; 6] = [0; 6];
    let segments = v6.segments();
    let prefix = &segments[..6];
    let carries = prefix == MAPPED
        || prefix == TRANSLATED
        || prefix == NAT64_WELL_KNOWN
        || (prefix == COMPATIBLE && !v6.is_loopback() && !v6.is_unspecified())
        || nat64_prefixes.iter().any(|p| p.segments()[..6] == *prefix);
    let [.., a, b, c, d] = v6.octets();
    carries.then(|| Ipv4Addr::new(a, b, c, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_keep_names_up_to_the_limit_and_hash_longer_ones() {
        let s = Settings::default();
        let at_limit = format!("{}.example", "h".repeat(MAX_CLIENT_KEY - 8));
        assert_eq!(at_limit.len(), MAX_CLIENT_KEY);
        assert_eq!(client_key(&at_limit, &s), at_limit);
        let longer = format!("h{at_limit}");
        assert!(client_key(&longer, &s).starts_with("sha256:"));
        assert_eq!(client_key("192.0.2.7", &s), "192.0.2.7");
        // IPv4 takes no zone: such a string is not an address and is kept whole.
        assert_eq!(client_key("192.0.2.7%eth0", &s), "192.0.2.7%eth0");
    }

    #[test]
    fn client_keys() {
        let s = Settings::default();
        let key = |rhost: &str| client_key(rhost, &s);
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8::1"), "2001:db8:0:0::/64");
        assert_eq!(key("2001:db8:0:0:ffff::1"), "2001:db8:0:0::/64");
        assert_eq!(key(""), "");
        assert_eq!(key("mail.example.net"), "mail.example.net");
        let long = "h".repeat(300);
        assert_eq!(key(&long).len(), "sha256:".len() + 32);
        assert_eq!(key(&long), key(&long));
    }

    #[test]
    fn ipv6_addresses_that_carry_an_ipv4_address_are_that_ipv4_client() {
        let s = Settings::default();
        let key = |rhost: &str| client_key(rhost, &s);
        for rhost in [
            "64:ff9b::c633:6407",       // NAT64, well-known prefix (RFC 6052)
            "64:ff9b::198.51.100.7",    // the same, written with a dotted quad
            "::ffff:0:c633:6407",       // SIIT, IPv4-translated (RFC 7915)
            "::ffff:c633:6407",         // IPv4-mapped
            "::c633:6407",              // IPv4-compatible (deprecated)
            "::ffff:198.51.100.7%eth0", // a zone changes nothing here
            "198.51.100.7",
        ] {
            assert_eq!(key(rhost), "198.51.100.7", "{rhost}");
        }
        assert_eq!(key("64:ff9b::c633:6408"), "198.51.100.8");
        // Network-specific NAT64 prefixes apply only when configured.
        assert_eq!(key("2001:db8:64::c633:6407"), "2001:db8:64:0::/64");
        let configured = Settings {
            nat64_prefixes: vec!["2001:db8:64::".parse().unwrap()],
            ..Settings::default()
        };
        assert_eq!(
            client_key("2001:db8:64::c633:6407", &configured),
            "198.51.100.7"
        );
        assert_eq!(
            client_key("2001:db8:64:0:1::c633:6407", &configured),
            "2001:db8:64:0::/64",
            "outside the /96"
        );
        assert_eq!(
            client_key("64:ff9b::c633:6407", &configured),
            "198.51.100.7",
            "the well-known prefix always applies"
        );
        // 64:ff9b:1::/48 (RFC 8215, local use) is a network-specific prefix: configure it.
        assert_eq!(key("64:ff9b:1::c633:6407"), "64:ff9b:1:0::/64");
    }

    #[test]
    fn loopback_unspecified_and_link_local_addresses_are_keyed_whole() {
        let s = Settings::default();
        let key = |rhost: &str| client_key(rhost, &s);
        assert_eq!(key("::1"), "::1");
        assert_eq!(key("::"), "::");
        assert_eq!(key("0:0:0:0:0:0:0:1"), "::1");
        assert_eq!(key("fe80::1"), "fe80::1");
        assert_eq!(key("FE80:0::1"), "fe80::1");
        assert_eq!(key("fe80::2"), "fe80::2");
        assert_eq!(key("febf::1"), "febf::1", "the last /16 of fe80::/10");
        assert_eq!(key("fec0::1"), "fec0:0:0:0::/64", "not link-local");
        // PAM_RHOST may carry a zone: kept for link-local (another interface, another host).
        assert_eq!(key("fe80::1%eth0"), "fe80::1%eth0");
        assert_eq!(key("fe80::1%eth1"), "fe80::1%eth1");
        assert_eq!(key("::1%lo"), "::1%lo");
        assert_eq!(key("2001:db8::1%eth0"), "2001:db8:0:0::/64", "zone ignored");
        assert!(key("fe80::1%eth 0").starts_with("sha256:"));
    }
}
