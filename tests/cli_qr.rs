//! The QR code of the enrolment URI, decoded back with a real QR reader (`zbarimg`, Debian
//! zbar-tools; SVG rasterised with `rsvg-convert`, librsvg2-bin): the terminal rendering,
//! the PNG and SVG files, and the SVG in the panel's JSON all hold exactly the URI.

mod cli_support;
mod skip;

use cli_support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The half-block QR code in `stdout`, as a PGM image: each character is two modules, the
/// terminal's foreground (`fg_light`: light modules) on its background, with a margin of
/// background around it.
fn terminal_qr_to_pgm(stdout: &str, fg_light: bool, path: &Path) {
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.is_empty() && l.chars().all(|c| " █▀▄".contains(c)))
        .collect();
    assert!(rows.len() > 10, "no QR code in: {stdout}");
    let width = rows[0].chars().count();
    assert!(
        rows.iter().all(|r| r.chars().count() == width),
        "ragged QR rows"
    );
    let mut modules = Vec::new(); // true: drawn in the foreground colour
    for row in &rows {
        let chars: Vec<char> = row.chars().collect();
        modules.push(
            chars
                .iter()
                .map(|c| matches!(c, '█' | '▀'))
                .collect::<Vec<_>>(),
        );
        modules.push(
            chars
                .iter()
                .map(|c| matches!(c, '█' | '▄'))
                .collect::<Vec<_>>(),
        );
    }
    let (scale, margin) = (4usize, 6usize);
    let (w, h) = (
        (width + 2 * margin) * scale,
        (modules.len() + 2 * margin) * scale,
    );
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    for y in 0..h {
        for x in 0..w {
            let (mx, my) = (
                (x / scale) as isize - margin as isize,
                (y / scale) as isize - margin as isize,
            );
            let drawn = my >= 0
                && mx >= 0
                && (my as usize) < modules.len()
                && (mx as usize) < width
                && modules[my as usize][mx as usize];
            let light = drawn == fg_light;
            pgm.push(if light { 255 } else { 0 });
        }
    }
    fs::write(path, pgm).unwrap();
}

fn uri_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .expect("a URI line")
        .trim()
        .to_string()
}

#[test]
fn the_terminal_qr_code_holds_the_uri() {
    if !have_tool("zbarimg") {
        return;
    }
    let env = Env::new();
    // Default: for a dark terminal, the foreground draws the light modules.
    let run = env.run(&["enable", "Alice+Mail@Example.com", "--begin"]);
    run.assert_code(0);
    let uri = uri_line(&run.stdout);
    assert_eq!(
        env.pending("alice+mail@example.com")
            .unwrap()
            .record
            .secret_base32()
            .as_str(),
        secret_of_uri(&uri)
    );
    let image = env.dir.path().join("terminal.pgm");
    terminal_qr_to_pgm(&run.stdout, true, &image);
    assert_eq!(zbar(&image), uri);

    // --invert: for a light terminal, the foreground draws the dark modules.
    let run = env.run(&["enable", "bob", "--begin", "--invert"]);
    run.assert_code(0);
    let image = env.dir.path().join("inverted.pgm");
    terminal_qr_to_pgm(&run.stdout, false, &image);
    assert_eq!(zbar(&image), uri_line(&run.stdout));
}

#[test]
fn the_interactive_terminal_qr_code_holds_the_uri() {
    if !have_tool("zbarimg") {
        return;
    }
    let env = Env::new();
    let (run, uri) = env.enable_typing_the_code("alice", &[]);
    run.assert_code(0);
    let image = env.dir.path().join("terminal.pgm");
    terminal_qr_to_pgm(&run.stdout, true, &image);
    assert_eq!(zbar(&image), uri);
}

#[test]
fn the_png_and_svg_images_hold_the_uri() {
    if !have_tool("zbarimg") || !have_tool("rsvg-convert") {
        return;
    }
    let env = Env::new();
    let png = env.dir.path().join("qr.png");
    let svg = env.dir.path().join("qr.svg");
    let run = env.run(&[
        "enable",
        "alice@example.com",
        "--begin",
        "--json",
        "--qr-png",
        png.to_str().unwrap(),
        "--qr-svg",
        svg.to_str().unwrap(),
    ]);
    run.assert_code(0);
    let json = run.json();
    let uri = json["uri"].as_str().unwrap();

    assert_eq!(zbar(&png), uri);
    let svg_png = env.dir.path().join("svg.png");
    let rasterise = |from: &Path, to: &Path| {
        let ok = Command::new("rsvg-convert")
            .arg(from)
            .arg("-o")
            .arg(to)
            .status()
            .unwrap()
            .success();
        assert!(ok, "rsvg-convert failed on {}", from.display());
    };
    rasterise(&svg, &svg_png);
    assert_eq!(zbar(&svg_png), uri);

    // The SVG in the JSON is the same picture.
    assert_eq!(
        fs::read_to_string(&svg).unwrap(),
        json["qr_svg"].as_str().unwrap()
    );
    let json_svg = env.dir.path().join("json.svg");
    let json_png = env.dir.path().join("json.png");
    fs::write(&json_svg, json["qr_svg"].as_str().unwrap()).unwrap();
    rasterise(&json_svg, &json_png);
    assert_eq!(zbar(&json_png), uri);

    for image in [&png, &svg] {
        assert_eq!(
            fs::metadata(image).unwrap().permissions().mode() & 0o777,
            0o600,
            "it holds the secret"
        );
    }
}

#[test]
fn qr_images_are_never_written_over_an_existing_file() {
    let env = Env::new();
    let png = env.dir.path().join("qr.png");
    fs::write(&png, "keep me").unwrap();
    env.run(&[
        "enable",
        "alice",
        "--begin",
        "--qr-png",
        png.to_str().unwrap(),
    ])
    .assert_code(2)
    .assert_stderr("new file");
    assert_eq!(fs::read_to_string(&png).unwrap(), "keep me");
    assert!(
        env.pending("alice").is_none(),
        "nothing pending when the image failed"
    );

    let link = env.dir.path().join("link.svg");
    std::os::unix::fs::symlink("/etc/mailmfa-test-target", &link).unwrap();
    env.run(&[
        "enable",
        "alice",
        "--begin",
        "--qr-svg",
        link.to_str().unwrap(),
    ])
    .assert_code(2);
    assert!(!Path::new("/etc/mailmfa-test-target").exists());
}
