//! Client addresses through the real libpam (issue 11, finding 5): IPv6 addresses that carry
//! an IPv4 address — NAT64 (`64:ff9b::/96`, RFC 6052, and the network-specific prefixes of
//! `nat64_prefixes`), SIIT (`::ffff:0:a.b.c.d`, RFC 7915) and IPv4-compatible (`::a.b.c.d`) —
//! are each the IPv4 client they carry, not one client per /64: a code used from one such
//! client is `replayed` from another and `reused` only from the same one, `reuse_for` sessions
//! and the per-client throttle are per IPv4 client; link-local addresses are each their own
//! client.

mod fixture;

use fixture::{code, wait_for_step_margin, Fixture};
use mailmfa::auth::{decide_verify, Attempt};
use mailmfa::config::Settings;
use mailmfa::pam::client::Response;
use mailmfa::record::Record;
use mailmfa::store::Store;

const PW: &str = "T9D3K!px";
const USER: &str = "alice@example.com";

/// The IPv6 forms that carry an IPv4 address, by the prefix before the IPv4 address's last
/// 16 bits: `{prefix}6407` is 198.51.100.7 (`c633:6407`), `{prefix}6408` is 198.51.100.8.
const FORMS: [(&str, &str); 3] = [
    ("NAT64 well-known prefix", "64:ff9b::c633:"),
    ("SIIT IPv4-translated", "::ffff:0:c633:"),
    ("IPv4-compatible", "::c633:"),
];

fn world(config: &str, args: &str) -> (Fixture, Record) {
    let f = Fixture::with_config(config);
    f.install_example("dovecot-virtual", "mail", args);
    f.add_password(USER, PW);
    let rec = f.enable(USER);
    (f, rec)
}

fn reason(r: &Response) -> &str {
    r.reason.as_deref().unwrap_or("")
}

/// One code from `first`: `ok`; the same string from `second`: `replayed`; from `first`
/// again: `reused`.
fn assert_two_clients(f: &Fixture, rec: &Record, first: &str, second: &str, form: &str) {
    wait_for_step_margin(3);
    let s = format!("{PW}{}", code(rec, 0));
    let ok = f.login("mail", USER, &s, Some(first));
    assert_eq!(reason(&ok), "ok", "{form}: {ok:?}");
    let other = f.login("mail", USER, &s, Some(second));
    assert!(!other.success(), "{form}: another client got in: {other:?}");
    assert_eq!(reason(&other), "replayed", "{form}");
    let again = f.login("mail", USER, &s, Some(first));
    assert_eq!(reason(&again), "reused", "{form}: {again:?}");
}

#[test]
fn a_code_used_from_one_mapped_ipv4_client_is_replayed_from_another_and_reused_from_the_same() {
    for (form, prefix) in FORMS {
        let (f, rec) = world("", "");
        assert_two_clients(
            &f,
            &rec,
            &format!("{prefix}6407"),
            &format!("{prefix}6408"),
            form,
        );
        // The same IPv4 client seen directly is the same client.
        let s = format!("{PW}{}", code(&rec, 0));
        let direct = f.login("mail", USER, &s, Some("198.51.100.7"));
        assert!(direct.success(), "{form}: {direct:?}");
    }
}

#[test]
fn with_reuse_for_another_mapped_client_is_refused() {
    for (form, prefix) in FORMS {
        let (f, rec) = world("", "reuse_for=1h");
        let (first, second) = (format!("{prefix}6407"), format!("{prefix}6408"));
        // A login from `first` twenty minutes ago, as the module decided it then.
        let then = fixture::now() - 1200;
        let old = rec.params().code(rec.params().step_at(then)).to_vec();
        let settings = Settings {
            reuse_for: 3600,
            ..f.settings.clone()
        };
        let attempt = Attempt::totp(&old, &first, then);
        f.store()
            .update_state(&fixture::login(USER), &mut |state| {
                decide_verify(&rec, state, attempt, &settings).state_changed
            })
            .unwrap();
        let s = format!("{PW}{}", String::from_utf8(old.clone()).unwrap());
        let other = f.login("mail", USER, &s, Some(&second));
        assert!(
            !other.success(),
            "{form}: another IPv4 client reused the session: {other:?}"
        );
        let same = f.login("mail", USER, &s, Some(&first));
        assert_eq!(reason(&same), "reused", "{form}: {same:?}");
        // And a fresh code used from `first` is refused from `second` too.
        let (f, rec) = world("", "reuse_for=1h");
        assert_two_clients(&f, &rec, &first, &second, form);
    }
}

#[test]
fn the_per_client_throttle_counts_two_mapped_clients_separately() {
    for (form, prefix) in FORMS {
        let (f, rec) = world("", "max_failures=3");
        let (first, second) = (format!("{prefix}6407"), format!("{prefix}6408"));
        let right = code(&rec, 0);
        let wrongs = ["000001", "000002", "000003", "000004"];
        for wrong in wrongs.iter().filter(|w| **w != right).take(3) {
            let r = f.login("mail", USER, &format!("{PW}{wrong}"), Some(&first));
            assert_eq!(reason(&r), "bad_code", "{form}");
        }
        let s = format!("{PW}{}", code(&rec, 0));
        let throttled = f.login("mail", USER, &s, Some(&first));
        assert_eq!(reason(&throttled), "throttled", "{form}: {throttled:?}");
        let other = f.login("mail", USER, &s, Some(&second));
        assert!(
            other.success(),
            "{form}: a second IPv4 client was throttled: {other:?}"
        );
    }
}

#[test]
fn nat64_prefixes_work_from_mailmfa_toml_and_from_the_pam_d_line() {
    let (first, second) = ("2001:db8:64::c633:6407", "2001:db8:64::c633:6408");
    for (place, config, args) in [
        (
            "mailmfa.toml",
            "nat64_prefixes = [\"2001:db8:64::/96\"]",
            "",
        ),
        (
            "mailmfa.toml, two prefixes",
            "nat64_prefixes = [\"2001:db8:1::/96\", \"2001:db8:64::/96\"]",
            "",
        ),
        ("pam.d line", "", "nat64_prefixes=2001:db8:64::/96"),
        (
            "pam.d line, two prefixes",
            "",
            "nat64_prefixes=2001:db8:1::/96,2001:db8:64::/96",
        ),
    ] {
        let (f, rec) = world(config, args);
        assert_two_clients(&f, &rec, first, second, place);
    }
    // Without the setting they are ordinary IPv6 addresses of one /64: one client.
    let (f, rec) = world("", "");
    wait_for_step_margin(3);
    let s = format!("{PW}{}", code(&rec, 0));
    assert_eq!(reason(&f.login("mail", USER, &s, Some(first))), "ok");
    assert_eq!(reason(&f.login("mail", USER, &s, Some(second))), "reused");
    // The pam.d line overrides the file: an empty list there turns the file's prefixes off.
    let (f, rec) = world("nat64_prefixes = [\"2001:db8:64::/96\"]", "nat64_prefixes=");
    wait_for_step_margin(3);
    let s = format!("{PW}{}", code(&rec, 0));
    assert_eq!(reason(&f.login("mail", USER, &s, Some(first))), "ok");
    assert_eq!(reason(&f.login("mail", USER, &s, Some(second))), "reused");
}

#[test]
fn a_bad_nat64_prefix_denies_every_login() {
    let (f, rec) = world("", "nat64_prefixes=2001:db8:64::/96");
    let r = f.login(
        "mail",
        USER,
        &format!("{PW}{}", code(&rec, 0)),
        Some("192.0.2.1"),
    );
    assert_eq!(reason(&r), "ok", "a good prefix is accepted: {r:?}");
    for args in [
        "nat64_prefixes=2001:db8:64::/64",
        "nat64_prefixes=2001:db8:64::1/96",
        "nat64_prefixes=192.0.2.0/24",
        "nat64_prefixes=2001:db8:64::",
    ] {
        let (f, rec) = world("", args);
        let r = f.login(
            "mail",
            USER,
            &format!("{PW}{}", code(&rec, 0)),
            Some("192.0.2.1"),
        );
        assert!(!r.success());
        assert_eq!(reason(&r), "bad_config", "{args}");
    }
}

#[test]
fn link_local_and_loopback_addresses_are_each_their_own_client() {
    for (form, first, second) in [
        ("link-local", "fe80::1", "fe80::2"),
        ("link-local with zones", "fe80::1%eth0", "fe80::1%eth1"),
        ("loopback and unspecified", "::1", "::"),
    ] {
        let (f, rec) = world("", "");
        assert_two_clients(&f, &rec, first, second, form);
    }
}
