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
mod skip;
mod sql;

use integration::{assert_no_secrets, ip, step_margin, wrong_code, PW};
use mailmfa::record::Record;
use panel::{
    assert_security_headers, basic, code, dovecot_auth, pw_code, raw_http, raw_status,
    record_from_uri, Client, MailWorld, PanelOpts, PanelWorld, Resp, PANEL_PREREQS, PANEL_SERVICE,
    SESSION_COOKIE,
};
use serde_json::json;
use servers::{imap_login, require_prereqs};
use sql::Records;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A panel world with default settings, or None (skipped) when the machine lacks something.
fn world() -> Option<PanelWorld> {
    world_with(&PanelOpts::default())
}

fn world_with(opts: &PanelOpts) -> Option<PanelWorld> {
    if !require_prereqs(PANEL_PREREQS) {
        return None;
    }
    PanelWorld::try_start(opts)
}

// The panel's suite of MFA changes, once with the records in files and once in each SQL
// server (issue 15): enrolment, sign-in with a code, app passwords, recovery codes, the admin
// token; the rest of this file (sessions, headers, limits) does not touch records.
for_each_records!(
    wrong_code_on_confirm_leaves_mfa_off,
    basic_auth_with_password_and_code_works_once,
    app_password_cannot_sign_in_to_the_panel,
    a_recovery_code_signs_in_an_owner_without_the_phone_once,
    admin_token_manages_another_mailbox,
);

/// `{"error": code, "message": non-empty}` with HTTP `status`.
fn assert_error(r: &Resp, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    let v = r.json();
    assert_eq!(v["error"], code, "{what}: {}", r.body);
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message: {}",
        r.body
    );
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{what}: content-type {:?}",
        r.header("content-type")
    );
}

/// A client signed in as `user` (password `PW`, MFA off) through the API.
fn signed_in(p: &PanelWorld, user: &str) -> Client {
    let mut c = p.client();
    let r = c.sign_in(user, PW);
    assert_eq!(r.status, 200, "sign-in: {}", r.body);
    assert!(c.csrf.is_some(), "no csrf in {}", r.body);
    c
}

/// A panel with `panel_extra` in its table, and the owner `user` signed in to it.
fn owner_signed_in_with(panel_extra: &str, user: &str) -> Option<(PanelWorld, Client)> {
    let p = world_with(&PanelOpts {
        panel_extra: panel_extra.into(),
        ..Default::default()
    })?;
    p.owner(user);
    let c = signed_in(&p, user);
    Some((p, c))
}

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
    assert!(dovecot_auth(
        &sock,
        PANEL_SERVICE,
        "127.0.0.5",
        "plain@example.com",
        PW
    ));
    assert!(!dovecot_auth(
        &sock,
        PANEL_SERVICE,
        "127.0.0.6",
        "plain@example.com",
        "nope"
    ));
    assert!(!dovecot_auth(
        &sock,
        PANEL_SERVICE,
        "127.0.0.7",
        "mfa@example.com",
        PW
    ));
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

/// A state-changing API call or form without the CSRF token is refused with 403 `csrf`
/// (and changes nothing); with it, it goes through.
#[test]
fn missing_csrf_is_403() {
    let Some(p) = world() else { return };
    let user = "csrf@example.com";
    p.owner(user);
    let mut c = signed_in(&p, user);
    let r = c.json_with(
        "POST",
        "/api/v1/mfa/enrolment",
        &json!({}),
        &[("X-CSRF-Token", "")],
    );
    assert_error(&r, 403, "csrf", "enrolment without token");
    let r = c.json_with(
        "POST",
        "/api/v1/mfa/enrolment",
        &json!({}),
        &[(
            "X-CSRF-Token",
            "0000000000000000000000000000000000000000000",
        )],
    );
    assert_error(&r, 403, "csrf", "enrolment with a wrong token");
    let st = c.get("/api/v1/mfa").json();
    assert!(
        st["pending_expires"].is_null(),
        "a refused call began an enrolment: {st}"
    );
    // The page's form without its hidden field.
    let r = c.form("/mfa/next", &[("status", "enabled")]);
    assert_eq!(r.status, 403, "form without csrf: {}", r.body);
    assert!(!r.body.contains("otpauth://"), "the form showed a key");
    // Sign-out without the token does not end the session.
    let r = c.request("DELETE", "/api/v1/session", &[("X-CSRF-Token", "x")], None);
    assert_eq!(r.status, 403, "sign-out without token: {}", r.body);
    assert_eq!(c.get("/api/v1/mfa").status, 200);
    // With the token: through.
    let r = c.post("/api/v1/mfa/enrolment", &json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.delete("/api/v1/session");
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        c.get("/api/v1/mfa").status,
        401,
        "session alive after sign-out"
    );
}

/// The session cookie: 256-bit id, HttpOnly, SameSite=Strict, Path=/, no Secure over plain
/// http; Secure when a trusted proxy says the browser came over https.
#[test]
fn session_cookie_flags_and_secure_behind_trusted_tls_proxy() {
    let Some(p) = world_with(&PanelOpts {
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Default::default()
    }) else {
        return;
    };
    let user = "cookie@example.com";
    p.owner(user);
    let mut c = p.client();
    let r = c.sign_in(user, PW);
    assert_eq!(r.status, 200, "{}", r.body);
    let line = r
        .set_cookie(SESSION_COOKIE)
        .expect("no session cookie")
        .to_string();
    let attrs: Vec<String> = line
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attrs.contains(&"httponly".into()), "{line}");
    assert!(attrs.contains(&"samesite=strict".into()), "{line}");
    assert!(attrs.contains(&"path=/".into()), "{line}");
    assert!(
        !attrs.contains(&"secure".into()),
        "Secure over plain http: {line}"
    );
    let id = c.session().unwrap().to_string();
    assert!(
        id.len() >= 43,
        "session id too short for 256 bits: {} chars",
        id.len()
    );

    let line = api_session_cookie(
        &mut p.client(),
        user,
        &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "192.0.2.7"),
        ],
    );
    assert!(is_secure(&line), "no Secure behind a TLS proxy: {line}");
}

/// Signs `user` in through `POST /api/v1/session` with `headers` (and the JSON content
/// type); the session's `Set-Cookie` line.
fn api_session_cookie(c: &mut Client, user: &str, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let r = c.request(
        "POST",
        "/api/v1/session",
        &all,
        Some(
            json!({"login": user, "password": PW})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.set_cookie(SESSION_COOKIE)
        .expect("no session cookie")
        .to_string()
}

/// A `Set-Cookie` line has the `Secure` attribute.
fn is_secure(line: &str) -> bool {
    line.split(';')
        .any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

/// X-Forwarded-Proto from a peer that is not a trusted proxy is ignored: no Secure flag.
#[test]
fn forwarded_proto_from_untrusted_peer_is_ignored() {
    let Some(p) = world() else { return };
    let user = "untrusted@example.com";
    p.owner(user);
    let line = api_session_cookie(&mut p.client(), user, &[("X-Forwarded-Proto", "https")]);
    assert!(
        !is_secure(&line),
        "an untrusted peer's header set Secure: {line}"
    );
}

/// CSP, Referrer-Policy, nosniff and no-store on every page and API response: signed out,
/// signed in, errors, redirects, and the pages that show a secret.
#[test]
fn security_headers_on_every_page_and_api_response() {
    let Some(p) = world() else { return };
    let user = "headers@example.com";
    p.owner(user);
    let mut anon = p.client();
    for path in [
        "/",
        "/sign-in",
        "/mfa",
        "/app-passwords",
        "/recovery-codes",
        "/nope",
    ] {
        let r = anon.get(path);
        assert_security_headers(&r, &format!("GET {path} signed out ({})", r.status));
    }
    for path in [
        "/api/v1/mfa",
        "/api/v1/app-passwords",
        "/api/v1/recovery-codes",
    ] {
        let r = anon.get(path);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_security_headers(&r, &format!("GET {path} signed out"));
    }
    let r = anon.post(
        "/api/v1/session",
        &json!({"login": user, "password": "nope"}),
    );
    assert_security_headers(&r, "failed sign-in");
    let css = anon.get("/static/panel.css");
    assert_eq!(css.status, 200, "panel.css");
    assert_eq!(css.header("x-content-type-options"), Some("nosniff"));

    let mut c = signed_in(&p, user);
    for path in [
        "/",
        "/mfa",
        "/app-passwords",
        "/recovery-codes",
        "/api/v1/mfa",
        "/api/v1/app-passwords",
        "/api/v1/recovery-codes",
    ] {
        let r = c.get(path);
        assert!(r.status < 400, "GET {path}: {} {}", r.status, r.body);
        assert_security_headers(&r, &format!("GET {path} signed in"));
    }
    // The pages and responses that show a secret.
    let page = c.get("/mfa");
    let csrf = page.csrf_field().expect("csrf on /mfa");
    let r = c.form("/mfa/next", &[("csrf", &csrf), ("status", "enabled")]);
    assert!(
        r.body.contains("otpauth://"),
        "no enrolment page: {}",
        r.body
    );
    assert_security_headers(&r, "enrolment page");
    let r = c.post("/api/v1/mfa/enrolment", &json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_security_headers(&r, "API enrolment");
    let r = c.json_with(
        "POST",
        "/api/v1/mfa/enrolment",
        &json!({}),
        &[("X-CSRF-Token", "")],
    );
    assert_security_headers(&r, "403");
}

/// Session fixation: the id changes at sign-in; a cookie held before sign-in (or made up by
/// an attacker) is not a session, before or after the owner signs in.
#[test]
fn session_id_changes_at_sign_in_and_pre_sign_in_cookie_is_no_session() {
    let Some(p) = world() else { return };
    let user = "fixation@example.com";
    p.owner(user);
    let planted = "A".repeat(43);
    let mut c = p.client();
    c.cookies.insert(SESSION_COOKIE.into(), planted.clone());
    let page = c.get("/sign-in");
    assert_eq!(page.status, 200);
    let before: Vec<String> = c.cookies.values().cloned().collect();
    // Whatever the browser holds before sign-in is no session.
    let mut probe = p.client();
    for v in &before {
        probe.cookies.insert(SESSION_COOKIE.into(), v.clone());
        assert_eq!(
            probe.get("/api/v1/mfa").status,
            401,
            "pre-sign-in cookie is a session"
        );
    }
    let r = c.sign_in_form(user, PW);
    assert!(
        r.status == 303 || r.status == 200,
        "form sign-in: {} {}",
        r.status,
        r.body
    );
    let after = c.session().expect("no session after sign-in").to_string();
    assert!(!before.contains(&after), "the id did not change at sign-in");
    assert_ne!(after, planted);
    assert_eq!(c.get("/api/v1/mfa").status, 200, "the new session works");
    for v in &before {
        probe.cookies.insert(SESSION_COOKIE.into(), v.clone());
        assert_eq!(
            probe.get("/api/v1/mfa").status,
            401,
            "a pre-sign-in cookie became the session"
        );
    }
    // A second sign-in gets yet another id.
    let mut again = p.client();
    again.cookies.insert(SESSION_COOKIE.into(), after.clone());
    let r = again.sign_in(user, PW);
    assert_eq!(r.status, 200);
    assert_ne!(
        again.session(),
        Some(after.as_str()),
        "sign-in kept the old id"
    );
}

/// After the idle timeout, the session is refused. (The panel's shortest idle timeout is
/// 60 s, so this test waits a minute.)
#[test]
fn idle_session_expires() {
    let Some((_p, mut c)) = owner_signed_in_with(
        "idle_timeout = \"60s\"\nsession_lifetime = \"1h\"\n",
        "idle@example.com",
    ) else {
        return;
    };
    assert_eq!(c.get("/api/v1/mfa").status, 200);
    std::thread::sleep(Duration::from_secs(62));
    let r = c.get("/api/v1/mfa");
    assert_error(&r, 401, "unauthenticated", "after the idle timeout");
    assert_eq!(c.get("/mfa").status, 303, "the page after the idle timeout");
}

/// After the absolute lifetime, even a session in constant use (never idle for long) is
/// refused. (The shortest lifetime the panel takes is 60 s, and the idle timeout may not be
/// longer: both 60 s, the session used every 5 s.)
#[test]
fn session_expires_after_its_lifetime_even_when_active() {
    let Some((_p, mut c)) = owner_signed_in_with(
        "idle_timeout = \"60s\"\nsession_lifetime = \"60s\"\n",
        "lifetime@example.com",
    ) else {
        return;
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(63) {
        c.get("/api/v1/mfa");
        std::thread::sleep(Duration::from_secs(5));
    }
    let r = c.get("/api/v1/mfa");
    assert_error(&r, 401, "unauthenticated", "after the lifetime");
}

/// A body over `max_body` is refused with 413 `too_large`, on the API and on a form.
#[test]
fn oversized_body_is_413() {
    let Some(p) = world_with(&PanelOpts {
        panel_extra: "max_body = 4096\n".into(),
        ..Default::default()
    }) else {
        return;
    };
    let big = format!(
        "{{\"login\":\"big@example.com\",\"password\":\"{}\"}}",
        "x".repeat(200_000)
    );
    let req = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{big}",
        p.panel.addr,
        big.len()
    );
    let resp = raw_http(p.panel.addr, req.as_bytes());
    assert_eq!(raw_status(&resp), 413, "{}", &resp[..resp.len().min(500)]);
    assert!(
        resp.contains("too_large"),
        "{}",
        &resp[..resp.len().min(500)]
    );
    // Through the client too (a body that fits the socket buffers).
    let mut c = p.client();
    let r = c.post(
        "/api/v1/session",
        &json!({"login": "big@example.com", "password": "y".repeat(8000)}),
    );
    assert_error(&r, 413, "too_large", "8 kB sign-in");
    // A chunked body without a length is bounded the same way.
    let chunk = "z".repeat(8000);
    let req = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        p.panel.addr,
        chunk.len()
    );
    let resp = raw_http(p.panel.addr, req.as_bytes());
    assert_eq!(raw_status(&resp), 413, "{}", &resp[..resp.len().min(500)]);
}

/// Request headers dribbled a byte at a time are cut off by the header timeout: the panel
/// closes the connection (or answers 408) instead of waiting for ever.
#[test]
fn slow_request_headers_are_cut_off() {
    let Some(p) = world() else { return };
    let mut s = std::net::TcpStream::connect(p.panel.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = b"GET /sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let start = Instant::now();
    let mut sent = 0usize;
    let mut buf = [0u8; 1024];
    let cut = loop {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if s.write_all(&[byte]).is_err() {
            break "write refused";
        }
        sent += 1;
        match s.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(_) => break "answered",
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break "reset",
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "a request dribbling its headers ({sent} bytes) was still open after 120 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "slow request: {cut} after {sent} bytes, {:?}",
        start.elapsed()
    );
    if cut == "answered" {
        // An answer before the headers are complete can only be the timeout's.
        let mut rest = String::from_utf8_lossy(&buf).into_owned();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_string(&mut rest);
        assert!(rest.starts_with("HTTP/1.1 408"), "answered: {rest}");
    }
    // The panel still serves others.
    assert_eq!(p.client().get("/sign-in").status, 200);
}

/// A wrong code (or a malformed one) at confirm leaves MFA off: 422, no record, the
/// enrolment still pending; the right code then turns it on.
fn wrong_code_on_confirm_leaves_mfa_off(records: Records) {
    let Some(p) = world_with(&PanelOpts {
        records,
        ..Default::default()
    }) else {
        return;
    };
    let user = "confirm@example.com";
    p.owner(user);
    let mut c = signed_in(&p, user);
    let r = c.post("/api/v1/mfa/enrolment", &json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let rec = record_from_uri(v["uri"].as_str().unwrap());
    assert!(v["svg"].as_str().unwrap_or("").contains("<svg"), "{v}");
    assert!(v["expires"].as_u64().is_some(), "{v}");
    let r = c.post(
        "/api/v1/mfa/enrolment/confirm",
        &json!({"code": wrong_code(&rec)}),
    );
    assert_error(&r, 422, "code_refused", "wrong code");
    assert!(p.record(user).is_none(), "a wrong code wrote a record");
    let r = c.post("/api/v1/mfa/enrolment/confirm", &json!({"code": "12ab"}));
    assert_error(&r, 422, "bad_code_format", "malformed code");
    assert!(p.record(user).is_none(), "a malformed code wrote a record");
    let st = c.get("/api/v1/mfa").json();
    assert_eq!(st["mfa"], "off", "{st}");
    assert!(
        st["pending_expires"].as_u64().is_some(),
        "enrolment gone: {st}"
    );
    step_margin(3);
    let r = c.post(
        "/api/v1/mfa/enrolment/confirm",
        &json!({"code": code(&rec, 0)}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["mfa"], "on");
    assert!(p.record(user).is_some());
}

/// Basic auth with the address and password+code works for one request; the same code again
/// is refused (it was used), as is the password alone.
fn basic_auth_with_password_and_code_works_once(records: Records) {
    let Some(p) = world_with(&PanelOpts {
        records,
        ..Default::default()
    }) else {
        return;
    };
    let user = "basic@example.com";
    let rec = p.mfa_owner(user);
    let mut c = p.client();
    let r = c.get_with("/api/v1/mfa", &[("Authorization", &basic(user, PW))]);
    assert_error(&r, 401, "unauthenticated", "password alone");
    step_margin(3);
    let auth = basic(user, &pw_code(&rec, 0));
    let r = c.get_with("/api/v1/mfa", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["login"], user);
    assert_eq!(r.json()["mfa"], "on");
    assert!(c.session().is_none(), "Basic auth made a session cookie");
    let r = c.get_with("/api/v1/mfa", &[("Authorization", &auth)]);
    assert_error(&r, 401, "unauthenticated", "the same code again");
}

/// A new owner `user` with MFA, signed in through the API with password+code; on return the
/// next step has begun (the sign-in used this step's code in the panel's state).
fn mfa_owner_signed_in(p: &PanelWorld, user: &str) -> (Record, Client) {
    let rec = p.mfa_owner(user);
    let mut c = p.client();
    step_margin(5);
    let r = c.sign_in(user, &pw_code(&rec, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    panel::next_step();
    (rec, c)
}

/// An app password (made through the API, working over IMAP) cannot sign in to the panel,
/// neither as a session nor with Basic auth.
fn app_password_cannot_sign_in_to_the_panel(records: Records) {
    let Some(p) = world_with(&PanelOpts {
        records,
        ..Default::default()
    }) else {
        return;
    };
    let user = "apppw@example.com";
    let (rec, mut c) = mfa_owner_signed_in(&p, user);
    let r = c.post(
        "/api/v1/app-passwords",
        &json!({"label": "laptop", "services": [], "expires": null, "code": code(&rec, 0)}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let app = r.json()["password"].as_str().unwrap().to_string();
    let r = imap_login(p.imap(), ip(40), user, &app);
    assert!(r.is_ok(), "the app password does not work over IMAP: {r:?}");
    let mut other = p.client();
    let r = other.sign_in(user, &app);
    assert_error(&r, 401, "unauthenticated", "app password sign-in");
    assert!(other.session().is_none());
    let r = other.get_with("/api/v1/mfa", &[("Authorization", &basic(user, &app))]);
    assert_error(&r, 401, "unauthenticated", "app password Basic");
    let r = other.sign_in_form(user, &app);
    assert!(
        other.get("/api/v1/mfa").status == 401,
        "form sign-in: {}",
        r.status
    );
}

/// An owner who lost the phone signs in with the password and a recovery code (once: the
/// module uses it up) and turns MFA off with another one.
fn a_recovery_code_signs_in_an_owner_without_the_phone_once(records: Records) {
    let Some(p) = world_with(&PanelOpts {
        records,
        ..Default::default()
    }) else {
        return;
    };
    let user = "lostphone@example.com";
    let (rec, mut c) = mfa_owner_signed_in(&p, user);
    let r = c.post("/api/v1/recovery-codes", &json!({"code": code(&rec, 0)}));
    assert_eq!(r.status, 201, "{}", r.body);
    let codes: Vec<String> = r.json()["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();

    let mut lost = p.client();
    let r = lost.sign_in(user, &format!("{PW}{}", codes[0]));
    assert_eq!(r.status, 200, "password + recovery code: {}", r.body);
    let mut again = p.client();
    let r = again.sign_in(user, &format!("{PW}{}", codes[0]));
    assert_error(&r, 401, "unauthenticated", "a used recovery code");
    let r = lost.post("/api/v1/mfa/disable", &json!({"code": codes[1]}));
    assert_eq!(r.status, 200, "disable with a recovery code: {}", r.body);
    assert!(p.record(user).is_none(), "MFA is still on");
}

/// Failed sign-ins from one address beyond `sign_in_failures` are refused with 429, even
/// with the right password.
#[test]
fn sign_in_failures_per_address_limit_429() {
    let Some(p) = world_with(&PanelOpts {
        panel_extra: "sign_in_failures = 3\nsign_in_interval = \"15m\"\n".into(),
        ..Default::default()
    }) else {
        return;
    };
    let user = "spray@example.com";
    p.owner(user);
    let mut c = p.client();
    for i in 0..3 {
        let r = c.sign_in(user, &format!("wrong{i}"));
        assert_error(&r, 401, "unauthenticated", &format!("failure {i}"));
    }
    let r = c.sign_in(user, PW);
    assert_eq!(r.status, 429, "{}", r.body);
    let e = r.error();
    assert!(e == "too_many_attempts" || e == "throttled", "{}", r.body);
    assert!(c.session().is_none(), "signed in past the limit");
}

/// No secret (password, code, key, app password, recovery code, session id, CSRF token) in
/// any syslog line (the module's and the panel's audit lines), in the panel's output, in
/// Dovecot's log, or in any URL the panel sends the browser to; and every change has its
/// audit line.
#[test]
fn no_secret_in_any_log_line_or_url() {
    let Some(p) = world() else { return };
    let user = "secrets@example.com";
    p.owner(user);
    let mut secrets: Vec<String> = vec![PW.to_string()];
    let mut locations: Vec<String> = Vec::new();
    let mut c = p.client();
    let r = c.sign_in_form(user, PW);
    locations.extend(r.header("location").map(str::to_string));
    let r = c.sign_in(user, PW);
    assert_eq!(r.status, 200, "{}", r.body);
    secrets.extend(c.csrf.clone());
    secrets.extend(c.session().map(str::to_string));
    // A wrong password too: it is a secret of its own.
    let mut bad = p.client();
    bad.sign_in(user, "Wr0ngSecretPw!");
    secrets.push("Wr0ngSecretPw!".into());

    // Enrolment through the page, then the API.
    let page = c.get("/mfa");
    let csrf = page.csrf_field().expect("csrf");
    let r = c.form("/mfa/next", &[("csrf", &csrf), ("status", "enabled")]);
    let uri = hidden_otpauth(&r.body);
    let rec = record_from_uri(&uri);
    secrets.push(rec.secret_base32().to_string());
    for (attr, v) in attributes(&r.body) {
        if !v.starts_with("otpauth://") {
            assert!(
                !v.to_ascii_uppercase().contains(&*rec.secret_base32()),
                "the key is in a {attr} attribute: {v}"
            );
        }
    }
    step_margin(5);
    let code0 = code(&rec, 0);
    secrets.push(code0.clone());
    let csrf = r.csrf_field().expect("csrf on the enrolment page");
    let r = c.form("/mfa/confirm", &[("csrf", &csrf), ("challenge", &code0)]);
    locations.extend(r.header("location").map(str::to_string));
    assert!(
        p.record(user).is_some(),
        "confirm failed: {} {}",
        r.status,
        r.body
    );
    // Each code typed on a page once: the next step for each change.
    panel::next_step();
    let code1 = code(&rec, 0);
    secrets.push(code1.clone());
    let r = c.post(
        "/api/v1/app-passwords",
        &json!({"label": "phone", "services": ["imap"], "expires": "90d", "code": code1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    secrets.push(r.json()["password"].as_str().unwrap().to_string());
    panel::next_step();
    let code2 = code(&rec, 0);
    secrets.push(code2.clone());
    let r = c.post("/api/v1/recovery-codes", &json!({"code": code2}));
    assert_eq!(r.status, 201, "{}", r.body);
    let codes: Vec<String> = r.json()["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    secrets.extend(codes.iter().cloned());
    let r = c.post("/api/v1/mfa/disable", &json!({"code": codes[0]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.request("DELETE", "/api/v1/session", &[], None);
    locations.extend(r.header("location").map(str::to_string));

    integration::settle(p.syslog());
    let lines = p.syslog().lines();
    assert_no_secrets(&lines, &secrets);
    let audit: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("action=") && l.contains(&format!("user={user}")))
        .collect();
    for action in ["face=panel", "face=api"] {
        assert!(
            audit.iter().any(|l| l.contains(action)),
            "no audit line with {action}; lines:\n{}",
            lines.join("\n")
        );
    }
    let mut other = p.panel.stdout();
    other.push(p.panel.stderr());
    other.extend(p.mail.dovecot.log().lines());
    for text in &other {
        for s in &secrets {
            assert!(
                !text.to_ascii_lowercase().contains(&s.to_ascii_lowercase()),
                "a secret ({} chars) in the panel's output or Dovecot's log: {text}",
                s.len()
            );
        }
    }
    for l in &locations {
        for s in &secrets {
            assert!(!l.contains(s.as_str()), "a secret in a Location: {l}");
        }
    }
}

/// The `otpauth://` link of an enrolment page.
fn hidden_otpauth(html: &str) -> String {
    let at = html
        .find("otpauth://")
        .expect("no otpauth link on the page");
    html[at..]
        .split(['"', '<'])
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// Every `href`/`action`/`value`/`src` attribute of `html`, as (name, value).
fn attributes(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["href", "action", "value", "src"] {
        let needle = format!(" {name}=\"");
        let mut rest = html;
        while let Some(at) = rest.find(&needle) {
            rest = &rest[at + needle.len()..];
            let v = rest.split('"').next().unwrap_or("");
            out.push((name.to_string(), v.to_string()));
        }
    }
    out
}

/// The admin token (0600 file) manages another mailbox without its password or code: status,
/// enrolment, confirm, app passwords, disable (like --force); a wrong token is refused.
fn admin_token_manages_another_mailbox(records: Records) {
    let Some(p) = world_with(&PanelOpts {
        admin_token: true,
        records,
        ..Default::default()
    }) else {
        return;
    };
    let token = p.admin_token.clone().unwrap();
    let bearer = format!("Bearer {token}");
    let user = "managed@example.com";
    p.owner(user);
    let mut c = p.client();
    let h = [
        ("Authorization", bearer.as_str()),
        ("X-Mailmfa-Login", user),
    ];
    let r = c.get_with("/api/v1/mfa", &h);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["login"], user);
    assert_eq!(r.json()["mfa"], "off");
    let r = c.json_with("POST", "/api/v1/mfa/enrolment", &json!({}), &h);
    assert_eq!(r.status, 201, "{}", r.body);
    let rec = record_from_uri(r.json()["uri"].as_str().unwrap());
    step_margin(3);
    let r = c.json_with(
        "POST",
        "/api/v1/mfa/enrolment/confirm",
        &json!({"code": code(&rec, 0)}),
        &h,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(p.record(user).is_some());
    let r = c.json_with(
        "POST",
        "/api/v1/app-passwords",
        &json!({"label": "hosting", "services": ["imap"], "expires": null}),
        &h,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.get_with("/api/v1/app-passwords", &h);
    assert_eq!(
        r.json()["app_passwords"][0]["name"],
        "hosting",
        "{}",
        r.body
    );
    let r = c.request("DELETE", "/api/v1/app-passwords/hosting", &h, None);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = c.json_with("POST", "/api/v1/mfa/disable", &json!({}), &h);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(p.record(user).is_none(), "admin disable left the record");
    let wrong = format!("Bearer {}", "0".repeat(token.len()));
    let r = c.get_with(
        "/api/v1/mfa",
        &[("Authorization", wrong.as_str()), ("X-Mailmfa-Login", user)],
    );
    assert_error(&r, 401, "unauthenticated", "wrong admin token");
    assert!(c.session().is_none());
}

/// Errors are JSON `{"error", "message"}` with the contract's codes and statuses.
#[test]
fn errors_are_json_with_contract_codes() {
    let Some(p) = world() else { return };
    let user = "errors@example.com";
    p.owner(user);
    let mut anon = p.client();
    assert_error(
        &anon.get("/api/v1/mfa"),
        401,
        "unauthenticated",
        "no session",
    );
    let r = anon.post(
        "/api/v1/session",
        &json!({"login": user, "password": "nope"}),
    );
    assert_error(&r, 401, "unauthenticated", "wrong password");
    let mut c = signed_in(&p, user);
    let r = c.request(
        "POST",
        "/api/v1/mfa/enrolment",
        &[("Content-Type", "text/plain")],
        Some(b"{}"),
    );
    assert_error(&r, 415, "unsupported_media_type", "text/plain body");
    let r = c.request(
        "POST",
        "/api/v1/mfa/enrolment/confirm",
        &[("Content-Type", "application/json")],
        Some(b"{not json"),
    );
    assert_error(&r, 400, "invalid_input", "bad JSON");
    let r = c.post("/api/v1/mfa/enrolment/confirm", &json!({"code": "123456"}));
    assert_error(&r, 409, "no_enrolment", "confirm without enrolment");
    let r = c.post("/api/v1/mfa/disable", &json!({"code": "123456"}));
    assert_error(&r, 409, "mfa_not_on", "disable while off");
    let r = c.delete("/api/v1/app-passwords/nosuch");
    assert!(
        [404, 409].contains(&r.status),
        "revoke unknown: {} {}",
        r.status,
        r.body
    );
    assert!(
        ["not_found", "mfa_not_on"].contains(&r.error().as_str()),
        "{}",
        r.body
    );
    let rec = c.enable_mfa();
    let r = c.delete("/api/v1/app-passwords/nosuch");
    assert_error(&r, 404, "not_found", "revoke unknown");
    let r = c.post("/api/v1/mfa/enrolment", &json!({}));
    assert!(
        r.status == 409 || r.status == 422 || r.status == 400,
        "enrolment while on without a code: {} {}",
        r.status,
        r.body
    );
    let r = c.post(
        "/api/v1/app-passwords",
        &json!({"label": "x", "services": [], "code": wrong_code(&rec)}),
    );
    assert_error(&r, 422, "code_refused", "app password with a wrong code");
    assert_error(&c.get("/api/v1/nope"), 404, "not_found", "unknown API path");
}
