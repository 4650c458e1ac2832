// The User Panel's JSON API and web security (issue 12 items 5, 6 and 8), with a plain HTTP
// client against `mailmfa-panel` signing in through a real Dovecot (tests/panel/): CSRF, cookie
// flags, security headers on every response, session fixation, idle and absolute expiry,
// bounded bodies and slow requests, the confirm/disable rules, Basic auth, app passwords that
// cannot sign in to the panel, the per-address sign-in limit, no secret in any log line or URL,
// the admin token, and JSON errors with the contract's `error` strings. Also the harness
// self-test: Dovecot's extra auth-client listener answers the auth protocol for the panel's
// PAM service.
// Owns: tests/panel_api.rs. Support: tests/panel/, tests/integration/, tests/servers/.

mod fixture;
mod integration;
mod panel;
mod servers;

use integration::PW;
use panel::{dovecot_auth, MailWorld, PANEL_PREREQS, PANEL_SERVICE};
use servers::require_prereqs;

/// The harness: the listener the panel uses answers Dovecot's auth protocol, through the
/// `mailmfa-panel` PAM stack with the module: a mailbox without MFA gets in with its password,
/// not with a wrong one; one with MFA needs password+code.
#[test]
fn harness_dovecot_panel_listener_answers_auth() {
    if !require_prereqs(PANEL_PREREQS) {
        return;
    }
    let m = MailWorld::new();
    m.w.plain_user("plain@example.com", PW);
    let rec = m.w.mfa_user("mfa@example.com");
    let sock = m.auth_socket();
    assert!(dovecot_auth(&sock, PANEL_SERVICE, "127.0.0.5", "plain@example.com", PW));
    assert!(!dovecot_auth(&sock, PANEL_SERVICE, "127.0.0.6", "plain@example.com", "nope"));
    assert!(!dovecot_auth(&sock, PANEL_SERVICE, "127.0.0.7", "mfa@example.com", PW));
    integration::step_margin(3);
    assert!(dovecot_auth(
        &sock,
        PANEL_SERVICE,
        "127.0.0.8",
        "mfa@example.com",
        &integration::with_code(&rec, 0)
    ));
    let line = integration::expect_line(
        m.syslog(),
        0,
        "mfa@example.com",
        "127.0.0.8",
        "verify",
        "accept",
        "ok",
    );
    assert_eq!(line.service(), PANEL_SERVICE, "{}", line.raw);
}
