//! The one place that decides what a test does when the machine lacks something it needs
//! (issue 19): every test that can skip calls [`missing`] (directly or through [`require`],
//! [`require_root`], [`require_all`], `servers::require_prereqs`, `hostile::prerequisite` or
//! `cli_support::have_tool`), and nothing else in tests/ reads `CI`.
//!
//! - Under CI (env `CI` set to anything but empty, `0` or `false`, any case) a missing
//!   prerequisite fails the test.
//! - Elsewhere the test is skipped loudly: `SKIPPED: <binary>::<test>: missing <what>` goes
//!   straight to fd 2 (the test runner captures `eprintln!` of passing tests, not fd 2), and
//!   the same line is appended to the file named by env `MAILMFA_SKIP_LOG`, if set (one
//!   `O_APPEND` write per line: tests run in parallel processes). `scripts/test.sh` sets it
//!   and prints the skipped tests at the end of the run.
//!
//! Included by every test binary that can skip (`mod skip;`); other shared modules reach it
//! as `crate::skip`.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;

/// Env variable naming the file that collects one line per skipped test.
pub const LOG_ENV: &str = "MAILMFA_SKIP_LOG";

/// Whether a value of `CI` means "this is CI": set, and not empty, `0` or `false` (ignoring
/// case and surrounding blanks). `CI=1`, `CI=true`, `CI=yes`, `CI=TRUE`... all count.
pub fn is_truthy(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") | Some("0") => false,
        Some(v) => !v.eq_ignore_ascii_case("false"),
    }
}

/// Whether this run is in CI (see [`is_truthy`]); there a missing prerequisite fails.
pub fn ci() -> bool {
    let value = std::env::var_os("CI");
    is_truthy(value.as_ref().map(|v| v.to_string_lossy()).as_deref())
}

/// The name of the running test as the summary shows it: `<test binary>::<test>` (the binary
/// without cargo's `-<hash>` suffix; the test from libtest's thread name).
pub fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| match n.rsplit_once('-') {
            Some((stem, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => stem.to_string(),
            _ => n,
        })
        .unwrap_or_else(|| "<test binary>".to_string());
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed test>");
    format!("{binary}::{test}")
}

/// The test cannot run here because `what` is missing (a program, a file, "root
/// privileges"...). Under CI: panics. Elsewhere: writes `SKIPPED: <test>: missing <what>`
/// to fd 2 and to `$MAILMFA_SKIP_LOG`, and returns; the caller then returns from the test.
pub fn missing(what: &str) {
    let test = test_name();
    if ci() {
        panic!(
            "{test}: missing {what} -- CI is set, so a missing prerequisite fails the test \
             (outside CI it would be skipped)"
        );
    }
    let line = format!("SKIPPED: {test}: missing {what}");
    // One write each, so that lines of parallel tests never interleave.
    let _ = std::io::stderr().write_all(format!("\n{line}\n").as_bytes());
    if let Some(log) = std::env::var_os(LOG_ENV).filter(|v| !v.is_empty()) {
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            panic!(
                "cannot append to ${LOG_ENV} ({}): {e}",
                log.to_string_lossy()
            );
        }
    }
}

/// `true` when `ok`; otherwise [`missing`]`(what)` and `false`.
pub fn require(ok: bool, what: &str) -> bool {
    if !ok {
        missing(what);
    }
    ok
}

/// `true` when nothing is missing; otherwise [`missing`] with all of them (comma-separated)
/// and `false`.
pub fn require_all<S: AsRef<str>>(missing_names: &[S]) -> bool {
    if missing_names.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing_names.iter().map(AsRef::as_ref).collect();
    missing(&names.join(", "));
    false
}

/// Whether the test runs as root; when not, [`missing`]`("root privileges")`.
pub fn require_root() -> bool {
    require(is_root(), ROOT)
}

/// The prerequisite's name for root-only tests.
pub const ROOT: &str = "root privileges";

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    mailmfa::pam::sys::effective_uid() == 0
}
