//! Owns the User Panel's benchmark (issue 12, item 10): requests per second of
//! `GET /api/v1/mfa` with a session, and the sign-in time split into the auth path's part
//! (Dovecot's auth protocol → PAM → pam_mailmfa.so) and the panel's own part.
//!
//! Run it with `scripts/bench.sh --panel` (as root: it starts a real Dovecot and the panel, as
//! the panel tests do, with tests/panel/'s harness). It is a `harness = false` target: it
//! asserts nothing about time, it measures and prints a markdown table (also written to
//! `target/bench/panel.md`).
//!
//! - Requests per second: `ab` (apache2-utils) with keep-alive, 8 connections, 20,000
//!   requests, the session cookie, against the panel on 127.0.0.1; the panel and `ab` share the
//!   machine's two cores, as a panel and its proxy would.
//! - Sign-in: N sign-ins through `POST /api/v1/session` (the whole path: HTTP, the per-address
//!   limit, Dovecot, PAM, the module, the panel's code check) against N direct `AUTH` calls
//!   on the same Dovecot socket with the same service, address and string (the auth path
//!   alone), interleaved so that drift hits both alike. Medians; the panel's own part is the
//!   difference. With MFA, N mailboxes sign in once each: the direct call is the code's first
//!   use (the module writes its state), the panel's is the module's same-client reuse plus the
//!   panel's own first use of the code in its state.

#[path = "../tests/fixture/mod.rs"]
mod fixture;
#[path = "../tests/integration/mod.rs"]
mod integration;
#[path = "../tests/panel/mod.rs"]
mod panel;
#[path = "../tests/servers/mod.rs"]
mod servers;
#[path = "../tests/skip/mod.rs"]
mod skip;
#[path = "../tests/sql/mod.rs"]
mod sql;

use integration::PW;
use panel::{dovecot_auth, pw_code, PanelOpts, PanelWorld, PANEL_PREREQS, PANEL_SERVICE};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Sign-ins per kind.
const SIGN_INS: usize = 60;

fn main() {
    if !servers::require_prereqs(PANEL_PREREQS) {
        eprintln!("bench panel: prerequisites missing (see above); nothing measured");
        std::process::exit(2);
    }
    let world = PanelWorld::start(&PanelOpts {
        // The benchmark signs in hundreds of times from one address.
        panel_extra: "sign_in_failures = 10000\n".to_string(),
        ..Default::default()
    });
    let mut report = String::new();
    let _ = writeln!(report, "## User Panel (`mailmfa-panel`, release build)\n");
    let _ = writeln!(report, "| measure | value |\n|---|---|");

    // Requests per second of GET /api/v1/mfa with a session.
    world.owner("plain@example.test");
    let mut client = world.client();
    let r = client.sign_in("plain@example.test", PW);
    assert_eq!(r.status, 200, "sign-in for the benchmark: {}", r.body);
    let cookie = client.session().expect("a session cookie").to_string();
    for (label, extra) in [
        ("keep-alive", vec!["-k"]),
        ("a new connection each", vec![]),
    ] {
        let rps = ab_rps(&world.at("/api/v1/mfa"), &cookie, &extra);
        let _ = writeln!(
            report,
            "| `GET /api/v1/mfa` with a session, 8 clients, {label} | {rps:.0} requests/s |"
        );
    }

    // Sign-in: the whole path against the auth path alone. With MFA, each sign-in is a
    // mailbox of its own: a code signs in to the panel once (the panel uses it in its state).
    let mfa: Vec<(String, mailmfa::record::Record)> = (0..SIGN_INS)
        .map(|i| {
            let login = format!("mfa{i}@example.test");
            let record = world.mfa_owner(&login);
            (login, record)
        })
        .collect();
    let socket = world.mail.auth_socket();
    for kind in ["no MFA (password alone)", "MFA (password+code)"] {
        let (mut whole, mut auth) = (Vec::new(), Vec::new());
        for (i, (login, record)) in mfa.iter().enumerate() {
            let (login, password) = if kind.starts_with("MFA") {
                if i % 8 == 0 {
                    integration::step_margin(5);
                }
                (login.as_str(), pw_code(record, 0))
            } else {
                ("plain@example.test", PW.to_string())
            };
            // The auth path alone: Dovecot's auth protocol, as the panel speaks it.
            let t = Instant::now();
            assert!(
                dovecot_auth(&socket, PANEL_SERVICE, "127.0.0.1", login, &password),
                "the auth path refused {login}"
            );
            auth.push(t.elapsed());
            // The whole sign-in; with MFA the module sees the same string again from the same
            // address (its same-client reuse) and the panel checks the code in its own state.
            let mut c = world.client();
            let t = Instant::now();
            let r = c.sign_in(login, &password);
            whole.push(t.elapsed());
            assert_eq!(r.status, 200, "panel sign-in of {login}: {}", r.body);
        }
        let (w, a) = (median(&mut whole), median(&mut auth));
        let _ = writeln!(
            report,
            "| sign-in, {kind}: whole (`POST /api/v1/session`) | {:.2} ms |",
            ms(w)
        );
        let _ = writeln!(
            report,
            "| sign-in, {kind}: auth path (Dovecot → PAM → module) | {:.2} ms |",
            ms(a)
        );
        let _ = writeln!(
            report,
            "| sign-in, {kind}: the panel's own part (difference) | {:.2} ms |",
            ms(w.saturating_sub(a))
        );
    }
    let _ = writeln!(
        report,
        "\nMedians of {SIGN_INS} interleaved sign-ins each; `ab -c 8 -n 20000`."
    );
    print!("{report}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("panel.md"), &report);
}

/// `ab`'s "Requests per second" for `url` with the session cookie.
fn ab_rps(url: &str, cookie: &str, extra: &[&str]) -> f64 {
    let out = Command::new("ab")
        .args(extra)
        .args(["-q", "-c", "8", "-n", "20000", "-C"])
        .arg(format!("{}={cookie}", panel::SESSION_COOKIE))
        .arg(url)
        .output()
        .expect("run ab (apache2-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx responses"),
        "ab saw refused requests: {text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests per second:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no requests/s in ab's output: {text}"))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
