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
mod servers;

use browser::{decode_qr, file_url, Browser, BROWSER_PREREQS};
use servers::require_prereqs;

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
