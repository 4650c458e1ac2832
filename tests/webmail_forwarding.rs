// The browser's address through Roundcube to the module (issue 13 item 3), without a browser:
// an HTTP client plays a browser at 198.51.100.23 behind a proxy Roundcube trusts
// (`proxy_whitelist`, `X-Forwarded-For`). The plugin sends that address to the panel's
// precheck and, as `x-originating-ip`, with the login that carries the code, and Dovecot
// (`login_trusted_networks`) hands it to the module as PAM_RHOST; the session's later logins
// use the credential bound to the webmail host (127.0.0.1) and send no address.
// Owns: tests/webmail_forwarding.rs. Support: tests/webmail/, tests/panel/, tests/integration/.

mod browser;
mod fixture;
mod integration;
mod panel;
mod servers;
mod skip;
mod sql;
mod webmail;

use integration::{lines_since, step_margin, PW};
use panel::{code, form_encode, hidden_field, Client, Resp};
use webmail::{WebmailOpts, WebmailWorld};

/// The browser's address, as the proxy in front of Roundcube forwards it.
const BROWSER: &str = "198.51.100.23";

/// A form POST from the browser behind the proxy.
fn post(c: &mut Client, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let h = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Forwarded-For", BROWSER),
    ];
    c.request("POST", path, &h, Some(body.as_bytes()))
}

/// A GET from the browser behind the proxy; the page's request token.
fn token(c: &mut Client, path: &str) -> String {
    let r = c.get_with(path, &[("X-Forwarded-For", BROWSER)]);
    assert_eq!(r.status, 200, "{path}: {}", r.status);
    hidden_field(&r.body, "_token").unwrap_or_else(|| panic!("{path}: no _token"))
}

#[test]
fn the_browsers_address_reaches_the_module_and_the_session_runs_from_the_webmail_host() {
    if !webmail::prereqs() {
        return;
    }
    let w = WebmailWorld::start(&WebmailOpts {
        rc_extra: "$config['proxy_whitelist'] = ['127.0.0.1'];\n".into(),
        ..Default::default()
    });
    let user = "forwarded@example.com";
    let rec = w.p.mfa_owner(user);
    let mut c = Client::new(w.url());
    step_margin(5);
    let mark = w.p.syslog().mark();

    let t = token(&mut c, "?_task=login");
    let login = [
        ("_token", t.as_str()),
        ("_task", "login"),
        ("_action", "login"),
        ("_timezone", "UTC"),
        ("_url", ""),
        ("_user", user),
        ("_pass", PW),
    ];
    let r = post(&mut c, "?_task=login", &login);
    let to = r.header("location").unwrap_or_default().to_string();
    assert!(
        r.status == 302 && to.contains("_mailmfa=code"),
        "{} {to}",
        r.status
    );

    let t = token(&mut c, "?_task=login&_mailmfa=code");
    let typed = code(&rec, 0);
    let code_step = [
        ("_token", t.as_str()),
        ("_task", "login"),
        ("_action", "login"),
        ("_timezone", "UTC"),
        ("_url", ""),
        ("_mailmfa_code", typed.as_str()),
    ];
    let r = post(&mut c, "?_task=login", &code_step);
    let to = r.header("location").unwrap_or_default().to_string();
    assert!(
        r.status == 302 && to.contains("_task=mail"),
        "{} {to}",
        r.status
    );
    let r = c.get_with(&to.replace("./", "/"), &[("X-Forwarded-For", BROWSER)]);
    assert_eq!(r.status, 200, "the inbox after the code");

    let lines = lines_since(w.p.syslog(), mark, user);
    let accepted: Vec<_> = lines
        .iter()
        .filter(|l| l.phase() == "verify" && l.result() == "accept")
        .collect();
    assert_eq!(accepted.len(), 1, "one login with the code: {lines:?}");
    assert_eq!(accepted[0].rhost(), BROWSER, "{lines:?}");
    let credential: Vec<_> = lines
        .iter()
        .filter(|l| l.reason() == "app_password")
        .collect();
    assert!(
        !credential.is_empty(),
        "no login on the credential: {lines:?}"
    );
    assert!(
        credential.iter().all(|l| l.rhost() == "127.0.0.1"),
        "the credential is used from the webmail host only: {lines:?}"
    );
    w.p.syslog()
        .expect("the precheck from the browser's address", |l| {
            l.contains("event=sign_in") && l.contains("face=webmail") && l.contains(BROWSER)
        });
}
