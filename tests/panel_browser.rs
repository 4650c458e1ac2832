// The User Panel in a real browser (issue 12 item 8): headless Chromium from Debian driven over
// WebDriver (tests/browser/) against `mailmfa-panel` signing in through a real Dovecot
// (tests/panel/), the whole story of an owner turning MFA on by scanning the QR code (decoded
// from a screenshot with zbarimg) and off again with a code, plus app passwords and recovery
// codes. Screenshots go to docs/screenshots/ with MAILMFA_SCREENSHOTS=1, else to a temp dir.
// Also the harness self-test: a QR code in a local page, screenshot, decoded.
// Owns: tests/panel_browser.rs. Support: tests/browser/, tests/panel/, tests/integration/.

mod browser;
mod fixture;
mod integration;
mod panel;
mod servers;
mod skip;
mod sql;

use browser::{decode_qr, file_url, Browser, BROWSER_PREREQS};
use integration::{ip, step_margin, wrong_code, PW};
use mailmfa::record::Record;
use panel::{
    code, next_step, record_from_uri, PanelOpts, PanelWorld, PANEL_PREREQS, SESSION_COOKIE,
};
use servers::{imap_login, require_prereqs};
use std::path::{Path, PathBuf};

/// Everything a browser test needs: the panel's prerequisites and the browser's.
fn prereqs() -> bool {
    let all: Vec<&str> = PANEL_PREREQS
        .iter()
        .chain(BROWSER_PREREQS)
        .copied()
        .collect();
    require_prereqs(&all)
}

/// Where screenshots go: docs/screenshots/ with MAILMFA_SCREENSHOTS=1 (the ones the docs
/// show), else `tmp`.
fn shots_dir(tmp: &Path) -> PathBuf {
    if std::env::var("MAILMFA_SCREENSHOTS").as_deref() == Ok("1") {
        fixture::repo().join("docs").join("screenshots")
    } else {
        tmp.to_path_buf()
    }
}

/// The desktop window the screenshots are taken at (the QR code must be in view).
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 1100;

/// Signs in on the page with `password` (the form's `#login`, `#password`, `#sign-in`).
fn sign_in(b: &Browser, p: &PanelWorld, login: &str, password: &str) {
    b.goto(&p.at("/sign-in"));
    b.fill("#login", login);
    b.fill("#password", password);
    b.click("#sign-in");
}

/// True when the browser is on `path` of the panel (query ignored).
fn on(b: &Browser, p: &PanelWorld, path: &str) -> bool {
    let url = b.url();
    let url = url.split('?').next().unwrap_or("");
    url == p.at(path)
}

/// The text of `#error`, or "" when the page has none.
fn error_text(b: &Browser) -> String {
    b.try_find("#error").map(|e| e.text()).unwrap_or_default()
}

/// An SVG of the QR code of `text`, drawn with the library's QR encoder (dark modules as
/// rects, a 4-module quiet zone, 6 px per module), like the panel's inline `<svg id="qr">`.
fn qr_svg(text: &str) -> String {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("QR encode");
    let w = code.width();
    let colors = code.to_colors();
    let size = (w + 8) * 6;
    let mut svg = format!(
        "<svg id=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
         viewBox=\"-4 -4 {} {}\" shape-rendering=\"crispEdges\">\
         <rect x=\"-4\" y=\"-4\" width=\"100%\" height=\"100%\" fill=\"#fff\"/>",
        w + 8,
        w + 8
    );
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            svg.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"1\"/>",
                i % w,
                i / w
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The harness itself: chromedriver starts headless Chromium, a local page with an inline SVG
/// QR code is shown, screenshotted, and zbarimg reads the same text back from the PNG.
#[test]
fn browser_harness_screenshot_qr_decodes() {
    if !require_prereqs(BROWSER_PREREQS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let uri = "otpauth://totp/Example:owner%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";
    let page = dir.path().join("qr.html");
    std::fs::write(
        &page,
        format!(
            "<!doctype html><title>QR</title><main><h1 id=\"h\">Scan me</h1>{}\
             <input id=\"challenge\"></main>",
            qr_svg(uri)
        ),
    )
    .unwrap();
    let b = Browser::start(900, 900);
    b.goto(&file_url(&page));
    assert_eq!(b.title(), "QR");
    assert_eq!(b.text("#h"), "Scan me");
    assert_eq!(b.find("#qr").tag(), "svg");
    b.fill("#challenge", "123 456");
    assert_eq!(b.find("#challenge").prop("value"), "123 456");
    let png = b.screenshot(&dir.path().join("qr.png"));
    assert_eq!(decode_qr(&png), vec![uri.to_string()]);
}

/// Issue 12 item 8, the whole story in headless Chromium: sign in with the password (no MFA
/// yet) → MFA page → Enabled → Next → the QR code decoded from a screenshot → a wrong code
/// leaves MFA off → the right code → Save → Enabled → sign out → the password alone is
/// refused, password+code accepted → IMAP with password+code → Disabled with a wrong code
/// refused, with a current one accepted.
#[test]
fn owner_turns_mfa_on_by_scanning_the_qr_and_off_with_a_code() {
    if !prereqs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shots = shots_dir(tmp.path());
    let p = PanelWorld::start(&PanelOpts::default());
    let user = "owner@example.com";
    p.owner(user);
    let b = Browser::start(WIDTH, HEIGHT);

    // Not signed in: / leads to the sign-in page.
    b.goto(&p.at("/"));
    assert!(on(&b, &p, "/sign-in"), "/ led to {}", b.url());
    assert_eq!(
        b.find("#password").attr("type").as_deref(),
        Some("password")
    );
    b.fill("#login", user);
    b.screenshot(&shots.join("panel-sign-in.png"));

    // The password alone signs a mailbox without MFA in, onto the MFA page: Disabled.
    sign_in(&b, &p, user, PW);
    assert!(
        on(&b, &p, "/mfa"),
        "after sign-in: {}\n{}",
        b.url(),
        b.source()
    );
    assert_eq!(b.text("#mfa-status"), "Disabled");
    let cookie = b.cookie(SESSION_COOKIE).expect("session cookie");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site, "Strict", "{cookie:?}");
    assert!(!cookie.secure, "Secure over plain http: {cookie:?}");

    // Enabled → Next: the enrolment page with the QR code, the key and the otpauth link.
    b.select("#status", "enabled");
    b.click("#next");
    assert_eq!(b.find("#qr").tag(), "svg", "{}", b.source());
    let key = b.text("#key");
    let href = b.find("#otpauth").attr("href").expect("#otpauth href");
    assert!(href.starts_with("otpauth://totp/"), "{href}");
    let chal = b.find("#challenge");
    assert_eq!(chal.attr("inputmode").as_deref(), Some("numeric"));
    assert_eq!(chal.attr("autocomplete").as_deref(), Some("one-time-code"));
    let png = b.screenshot(&shots.join("panel-enrol.png"));
    let decoded = decode_qr(&png);
    assert_eq!(
        decoded.len(),
        1,
        "QR codes found in the screenshot: {decoded:?}"
    );
    let uri = &decoded[0];
    assert_eq!(uri, &href, "the QR code and the otpauth link differ");
    let rec = record_from_uri(uri);
    assert_eq!(
        key.replace(' ', "").to_ascii_uppercase(),
        rec.secret_base32().to_ascii_uppercase(),
        "#key is not the QR code's secret"
    );
    // The secret is nowhere in the URL.
    assert!(!b.url().to_ascii_uppercase().contains(&key.replace(' ', "")));

    // A wrong code: the enrolment page again, same QR code, an error, MFA still off.
    b.fill("#challenge", &wrong_code(&rec));
    b.click("#save");
    assert!(
        !error_text(&b).is_empty(),
        "no #error after a wrong code:\n{}",
        b.source()
    );
    assert_eq!(b.text("#key"), key, "a wrong code changed the key");
    assert!(p.record(user).is_none(), "a wrong code turned MFA on");

    // The right code: MFA on, the record holds the scanned secret.
    step_margin(3);
    b.fill("#challenge", &code(&rec, 0));
    b.click("#save");
    assert!(on(&b, &p, "/mfa"), "after Save: {}", b.url());
    assert_eq!(b.text("#mfa-status"), "Enabled", "{}", b.source());
    assert!(
        b.text("#message").contains("MFA is on"),
        "{}",
        b.text("#message")
    );
    let on_disk = p.record(user).expect("no record after Save");
    assert_eq!(on_disk.secret_base32(), rec.secret_base32());
    b.screenshot(&shots.join("panel-mfa.png"));

    // Sign out: the MFA page is gone.
    b.click("#sign-out");
    assert!(on(&b, &p, "/sign-in"), "after sign-out: {}", b.url());
    b.goto(&p.at("/mfa"));
    assert!(on(&b, &p, "/sign-in"), "/mfa after sign-out: {}", b.url());

    // The password alone is refused now; password+code gets in (with the next code: the
    // panel checks sign-in codes in its own state too, where Save used this one).
    sign_in(&b, &p, user, PW);
    assert!(!on(&b, &p, "/mfa"), "password alone signed in with MFA on");
    assert!(!error_text(&b).is_empty(), "no #error:\n{}", b.source());
    next_step();
    sign_in(&b, &p, user, &format!("{PW}{}", code(&rec, 0)));
    assert!(
        on(&b, &p, "/mfa"),
        "password+code refused: {}",
        error_text(&b)
    );
    assert_eq!(b.text("#mfa-status"), "Enabled");

    // IMAP with password+code (a later step: the module used this one for the sign-in).
    next_step();
    let r = imap_login(p.imap(), ip(20), user, &format!("{PW}{}", code(&rec, 0)));
    assert!(r.is_ok(), "IMAP with password+code: {r:?}");
    let r = imap_login(p.imap(), ip(21), user, PW);
    assert!(!r.is_ok(), "IMAP with the password alone: {r:?}");

    // Disabled → Next asks for a code; a wrong one is refused and MFA stays on.
    b.select("#status", "disabled");
    b.click("#next");
    b.fill("#challenge", &wrong_code(&rec));
    b.click("#save");
    assert!(!error_text(&b).is_empty(), "no #error:\n{}", b.source());
    assert!(p.record(user).is_some(), "a wrong code turned MFA off");
    // A current code turns it off (this step's: the panel saw the previous one at sign-in).
    b.fill("#challenge", &code(&rec, 0));
    b.click("#save");
    assert!(on(&b, &p, "/mfa"), "after disable: {}", b.url());
    assert_eq!(b.text("#mfa-status"), "Disabled", "{}", b.source());
    assert!(
        b.text("#message").contains("MFA is off"),
        "{}",
        b.text("#message")
    );
    assert!(p.record(user).is_none(), "record still there after disable");
    // And the password alone opens the mailbox again.
    let r = imap_login(p.imap(), ip(22), user, PW);
    assert!(r.is_ok(), "IMAP with the password after disable: {r:?}");
}

/// A new owner `user` with MFA, signed in (password+code) in a new browser, then on the
/// page at `path` through the nav link `nav`.
fn mfa_owner_on(p: &PanelWorld, user: &str, nav: &str, path: &str) -> (Record, Browser) {
    let rec = p.mfa_owner(user);
    let b = Browser::start(WIDTH, HEIGHT);
    step_margin(5);
    sign_in(&b, p, user, &format!("{PW}{}", code(&rec, 0)));
    assert!(on(&b, p, "/mfa"), "sign-in: {}", error_text(&b));
    b.click(nav);
    assert!(on(&b, p, path), "{}", b.url());
    (rec, b)
}

/// An app password made on the page is shown once, works over IMAP in place of
/// password+code, and stops working once revoked on the page.
#[test]
fn app_password_made_on_the_page_works_over_imap_until_revoked() {
    if !prereqs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shots = shots_dir(tmp.path());
    let p = PanelWorld::start(&PanelOpts::default());
    let user = "apps@example.com";
    let (rec, b) = mfa_owner_on(&p, user, "#nav-app-passwords", "/app-passwords");
    b.fill("#label", "phone");
    b.fill("#services", "imap");
    // The page's code is checked in the panel's state, where the sign-in used this step's.
    next_step();
    b.fill("#challenge", &code(&rec, 0));
    b.click("#add");
    let password = b.text("#new-app-password").trim().to_string();
    assert!(
        password.len() >= 20 && password.contains('-'),
        "#new-app-password: {password:?}\n{}",
        b.source()
    );
    let row = b.text("#app-passwords");
    assert!(row.contains("phone"), "table: {row}");
    assert!(
        !row.contains(&password),
        "the table shows the password again"
    );
    b.screenshot(&shots.join("panel-app-passwords.png"));
    // Shown once: a reload no longer holds it.
    b.goto(&p.at("/app-passwords"));
    assert!(
        !b.source().contains(&password),
        "the password is shown twice"
    );

    let r = imap_login(p.imap(), ip(30), user, &password);
    assert!(r.is_ok(), "IMAP with the app password: {r:?}");

    b.click("#revoke-phone");
    assert!(
        !b.text("#app-passwords").contains("phone"),
        "still listed after revoke: {}",
        b.text("#app-passwords")
    );
    let r = imap_login(p.imap(), ip(31), user, &password);
    assert!(!r.is_ok(), "IMAP with a revoked app password: {r:?}");
}

/// The recovery-codes page makes a new set with a current code, shows it once, counts what
/// is left, and one of the codes turns MFA off on the MFA page.
#[test]
fn recovery_codes_made_on_the_page_turn_mfa_off() {
    if !prereqs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shots = shots_dir(tmp.path());
    let p = PanelWorld::start(&PanelOpts::default());
    let user = "recovery@example.com";
    let (rec, b) = mfa_owner_on(&p, user, "#nav-recovery", "/recovery-codes");
    next_step();
    b.fill("#challenge", &code(&rec, 0));
    b.click("#generate");
    let codes: Vec<String> = b
        .find_all("#recovery-codes li")
        .iter()
        .map(|e| e.text().trim().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "codes: {codes:?}\n{}", b.source());
    assert_eq!(b.text("#recovery-left").trim(), "10");
    b.screenshot(&shots.join("panel-recovery.png"));
    b.goto(&p.at("/recovery-codes"));
    assert!(
        !b.source().contains(&codes[0]),
        "a recovery code is shown twice"
    );

    b.click("#nav-mfa");
    b.select("#status", "disabled");
    b.click("#next");
    b.fill("#challenge", &codes[3]);
    b.click("#save");
    assert_eq!(b.text("#mfa-status"), "Disabled", "{}", b.source());
    assert!(p.record(user).is_none(), "record still there");
}

/// Every page fits a phone's width (no sideways scrolling at 390 px), loads nothing from
/// another host and runs no script of its own: sign-in, MFA, the enrolment page with its QR
/// code, app passwords, recovery codes.
#[test]
fn pages_fit_a_phone_and_load_nothing_from_elsewhere() {
    if !prereqs() {
        return;
    }
    let p = PanelWorld::start(&PanelOpts::default());
    let user = "phone@example.com";
    p.owner(user);
    let b = Browser::start(390, 844);
    let check = |what: &str| {
        let fits = b.execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            serde_json::json!([]),
        );
        assert_eq!(
            fits,
            serde_json::json!(true),
            "{what} is wider than a phone"
        );
        let html = b.source().to_ascii_lowercase();
        assert!(!html.contains("<script"), "{what} has a script");
        for attr in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
        ] {
            assert!(
                !html.contains(attr),
                "{what} loads from another host ({attr})"
            );
        }
        let labels = b.find_all("label").len();
        let inputs = b.find_all("input:not([type=hidden]), select").len();
        assert!(
            labels >= inputs,
            "{what}: {inputs} inputs but {labels} labels"
        );
    };
    b.goto(&p.at("/sign-in"));
    check("sign-in");
    sign_in(&b, &p, user, PW);
    assert!(on(&b, &p, "/mfa"), "sign-in: {}", error_text(&b));
    check("MFA page");
    b.select("#status", "enabled");
    b.click("#next");
    check("enrolment page");
    let qr_width = b.execute(
        "return document.getElementById('qr').getBoundingClientRect().right;",
        serde_json::json!([]),
    );
    assert!(
        qr_width.as_f64().unwrap_or(9999.0) <= 390.0,
        "the QR code is cut off: right edge {qr_width}"
    );
    b.click("#nav-app-passwords");
    check("app passwords");
    b.click("#nav-recovery");
    check("recovery codes");
}
