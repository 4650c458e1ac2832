// The User Panel's calls for the Roundcube plugin (issue 13 items 1, 2 and 4), against
// `mailmfa-panel` signing in through a real Dovecot (tests/panel/): the password precheck
// through the shipped `mailmfa-precheck` stack (the password alone), the webmail session
// credential (an app password bound to the webmail host's address, working over real IMAP
// until revoked), and the admin token acting with the owner's rules when the plugin names the
// browser's address.
// Owns: tests/panel_webmail_api.rs. Support: tests/panel/, tests/integration/, tests/servers/.

mod fixture;
mod integration;
mod panel;
mod servers;
mod skip;
mod sql;

use integration::{ip, step_margin, wrong_code, PW};
use panel::{code, pw_code, Client, PanelOpts, PanelWorld, Resp, PANEL_PREREQS};
use serde_json::{json, Value};
use servers::{imap_login, require_prereqs};

/// A panel world with an admin token, or None (skipped) when the machine lacks something.
fn world() -> Option<PanelWorld> {
    if !require_prereqs(PANEL_PREREQS) {
        return None;
    }
    Some(PanelWorld::start(&PanelOpts {
        admin_token: true,
        ..Default::default()
    }))
}

/// The plugin's side of the API: the admin token, and the mailbox header when `login`.
struct Plugin {
    c: Client,
    bearer: String,
}

impl Plugin {
    fn new(p: &PanelWorld) -> Plugin {
        Plugin {
            c: p.client(),
            bearer: format!("Bearer {}", p.admin_token.clone().unwrap()),
        }
    }

    fn precheck(&mut self, login: &str, password: &str, client: &str) -> Resp {
        let body = json!({"login": login, "password": password, "client": client});
        let h = [("Authorization", self.bearer.as_str())];
        self.c
            .json_with("POST", "/api/v1/webmail/precheck", &body, &h)
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        login: &str,
        owner: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut h = vec![
            ("Authorization", self.bearer.as_str()),
            ("X-Mailmfa-Login", login),
        ];
        if let Some(client) = owner {
            h.push(("X-Mailmfa-Owner-Client", client));
        }
        match body {
            Some(b) => self.c.json_with(method, path, b, &h),
            None => self.c.request(method, path, &h, None),
        }
    }

    fn credential(&mut self, login: &str, from: &str) -> Resp {
        let body = json!({"client": "198.51.100.7", "from": [from], "services": ["imap"], "lifetime": "1h"});
        self.call(
            "POST",
            "/api/v1/webmail/credential",
            login,
            None,
            Some(&body),
        )
    }
}

/// The precheck answers "right" for the password alone, with the mailbox's MFA status, and the
/// same refusal for a wrong password, an unknown mailbox and password+code; it neither uses
/// nor checks a code (the code still logs in over IMAP afterwards).
#[test]
fn precheck_says_whether_the_password_alone_is_right_and_whether_mfa_is_on() {
    let Some(p) = world() else { return };
    let (mfa, plain) = ("webmail-mfa@example.com", "webmail-plain@example.com");
    let rec = p.mfa_owner(mfa);
    p.owner(plain);
    let mut plugin = Plugin::new(&p);
    step_margin(5);

    let r = plugin.precheck(mfa, PW, "198.51.100.7");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json()["login"].as_str(), r.json()["mfa"].as_str()),
        (Some(mfa), Some("on"))
    );
    let r = plugin.precheck(plain, PW, "198.51.100.7");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["mfa"], "off");

    let mut refusals = Vec::new();
    for (login, password) in [
        (mfa, "wrong password"),
        (plain, "wrong password"),
        ("nobody-here@example.com", PW),
        (mfa, pw_code(&rec, 0).as_str()),
    ] {
        let r = plugin.precheck(login, password, "198.51.100.8");
        assert_eq!(r.status, 401, "{login}: {}", r.body);
        refusals.push(r.body);
    }
    assert!(
        refusals.windows(2).all(|w| w[0] == w[1]),
        "refusals differ: {refusals:?}"
    );

    let r = imap_login(p.imap(), ip(41), mfa, &pw_code(&rec, 0));
    assert!(r.is_ok(), "the precheck used the code: {r:?}");

    let r = plugin.precheck(mfa, PW, "not-an-address");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_input")),
        "{}",
        r.body
    );
    let mut stranger = p.client();
    let r = stranger.json(
        "POST",
        "/api/v1/webmail/precheck",
        &json!({"login": mfa, "password": PW, "client": "198.51.100.7"}),
    );
    assert_eq!(r.status, 401, "without the token: {}", r.body);
    let wrong = format!("Bearer {}", "0".repeat(64));
    let r = stranger.json_with(
        "POST",
        "/api/v1/webmail/precheck",
        &json!({"login": mfa, "password": PW, "client": "198.51.100.7"}),
        &[("Authorization", wrong.as_str())],
    );
    assert_eq!(r.status, 401, "a wrong token: {}", r.body);
}

/// A session credential logs in over IMAP from the address it names and from no other, is
/// listed as a webmail credential, stops at revocation, and is refused for a mailbox without
/// MFA.
#[test]
fn a_session_credential_works_only_from_its_address_until_revoked() {
    let Some(p) = world() else { return };
    let (mfa, plain) = ("webmail-cred@example.com", "webmail-nomfa@example.com");
    p.mfa_owner(mfa);
    p.owner(plain);
    let mut plugin = Plugin::new(&p);

    let r = plugin.credential(mfa, &ip(42).to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    let name = r.json()["name"].as_str().unwrap().to_string();
    let password = r.json()["password"].as_str().unwrap().to_string();
    assert!(name.starts_with("webmail-"), "{name}");
    assert!(r.json()["expires"].as_u64().is_some(), "{}", r.body);

    let r = imap_login(p.imap(), ip(42), mfa, &password);
    assert!(r.is_ok(), "from the webmail host: {r:?}");
    let mark = p.syslog().mark();
    let r = imap_login(p.imap(), ip(43), mfa, &password);
    assert!(!r.is_ok(), "from another address: {r:?}");
    p.syslog().expect("app_password_wrong_client", |l| {
        l.contains("reason=app_password_wrong_client") && l.contains(&format!("rhost={}", ip(43)))
    });
    assert!(p.syslog().lines()[mark..]
        .iter()
        .all(|l| !l.contains(&password)));
    p.syslog().expect("the audit line", |l| {
        l.contains("action=webmail-credential")
            && l.contains("face=webmail")
            && l.contains("client=198.51.100.7")
    });

    let r = plugin.call("GET", "/api/v1/app-passwords", mfa, None, None);
    let listed = &r.json()["app_passwords"][0];
    assert_eq!(
        (listed["name"].as_str(), listed["webmail"].as_bool()),
        (Some(name.as_str()), Some(true)),
        "{}",
        r.body
    );
    assert_eq!(listed["from"], json!([ip(42).to_string()]));

    let r = plugin.call(
        "DELETE",
        &format!("/api/v1/app-passwords/{name}"),
        mfa,
        None,
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = imap_login(p.imap(), ip(42), mfa, &password);
    assert!(!r.is_ok(), "revoked, still works: {r:?}");

    let r = plugin.credential(plain, &ip(42).to_string());
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (409, Some("mfa_not_on")),
        "{}",
        r.body
    );
    for bad in [
        json!({"client": "198.51.100.7", "from": [], "services": ["imap"], "lifetime": "1h"}),
        json!({"client": "198.51.100.7", "from": ["127.0.0.1"], "services": [], "lifetime": "1h"}),
        json!({"client": "198.51.100.7", "from": ["127.0.0.1"], "services": ["imap"], "lifetime": "2d"}),
        json!({"client": "x", "from": ["127.0.0.1"], "services": ["imap"], "lifetime": "1h"}),
    ] {
        let r = plugin.call("POST", "/api/v1/webmail/credential", mfa, None, Some(&bad));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = plugin.call(
        "POST",
        "/api/v1/webmail/credential",
        mfa,
        Some("198.51.100.7"),
        Some(&json!({"client": "198.51.100.7", "from": ["127.0.0.1"], "services": ["imap"], "lifetime": "1h"})),
    );
    assert_eq!(
        r.status, 401,
        "as the owner, no credential without a login: {}",
        r.body
    );
}

/// With `X-Mailmfa-Owner-Client` the admin token acts as the owner signed in to webmail: a
/// change needs a current code (none, or a wrong one, is refused), and the audit line names
/// the webmail and the browser's address.
#[test]
fn the_owner_client_header_applies_the_owners_rules() {
    let Some(p) = world() else { return };
    let user = "webmail-owner@example.com";
    let rec = p.mfa_owner(user);
    let mut plugin = Plugin::new(&p);
    let owner = Some("198.51.100.9");
    step_margin(5);

    let r = plugin.call("POST", "/api/v1/mfa/disable", user, owner, Some(&json!({})));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("bad_code_format")),
        "{}",
        r.body
    );
    let r = plugin.call(
        "POST",
        "/api/v1/mfa/disable",
        user,
        owner,
        Some(&json!({"code": wrong_code(&rec)})),
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (422, Some("code_refused")),
        "{}",
        r.body
    );
    let add = json!({"label": "phone", "services": [], "expires": null});
    let r = plugin.call("POST", "/api/v1/app-passwords", user, owner, Some(&add));
    assert_eq!(r.status, 422, "an app password without a code: {}", r.body);
    assert!(p.record(user).is_some_and(|r| r.app_passwords.is_empty()));
    let add = json!({"label": "phone", "services": [], "expires": null, "code": code(&rec, 0)});
    let r = plugin.call("POST", "/api/v1/app-passwords", user, owner, Some(&add));
    assert_eq!(r.status, 201, "{}", r.body);
    p.syslog().expect("the audit line", |l| {
        l.contains("action=app-password-add")
            && l.contains("face=webmail")
            && l.contains("client=198.51.100.9")
    });
    let r = plugin.call(
        "POST",
        "/api/v1/mfa/disable",
        user,
        Some("not an address"),
        Some(&json!({})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(p.record(user).is_some(), "MFA went off without a code");
}
