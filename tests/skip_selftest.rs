//! The skip helper (tests/skip/, issue 19) and the re-run check of tests/hostile/, proved in
//! real child processes of this binary: a missing prerequisite fails the test under any
//! truthy `CI`; elsewhere the test passes with a `SKIPPED: <test>: missing <what>` line on
//! fd 2 (shown even though libtest captures the test's output) and in `$MAILMFA_SKIP_LOG`.

mod hostile;
mod skip;

use std::fs;
use std::process::{Command, Output};

/// Set in the child: it then plays the test that misses its prerequisite.
const CHILD: &str = "MAILMFA_SKIP_SELFTEST_CHILD";
const TEST: &str = "a_missing_prerequisite_fails_under_ci_and_is_loud_and_logged_elsewhere";
const WHAT: &str = "the selftest's prerequisite";

#[test]
fn ci_counts_when_set_to_anything_but_empty_zero_or_false() {
    for v in [
        "true",
        "1",
        "yes",
        "TRUE",
        "True",
        " true ",
        "on",
        "github-actions",
    ] {
        assert!(skip::is_truthy(Some(v)), "CI={v:?} is CI");
    }
    for v in [
        None,
        Some(""),
        Some("  "),
        Some("0"),
        Some("false"),
        Some("FALSE"),
    ] {
        assert!(!skip::is_truthy(v), "CI={v:?} is not CI");
    }
    assert!(
        !skip::is_truthy(Some(" False ")),
        "case and blanks are ignored"
    );
}

#[test]
fn libtest_counts_are_read_from_a_childs_output() {
    let one = "\nrunning 1 test\n.\ntest result: ok. 1 passed; 0 failed; 0 ignored; \
               0 measured; 41 filtered out; finished in 0.20s\n";
    assert_eq!(hostile::test_counts(one), Some((1, 1)));
    // A renamed test: the filter matches nothing, and libtest still exits 0.
    let none = "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; \
                0 measured; 42 filtered out; finished in 0.00s\n";
    assert_eq!(hostile::test_counts(none), Some((0, 0)));
    assert_eq!(hostile::test_counts("no summary at all"), None);
}

/// Runs [`TEST`] alone in a child of this binary with `CI` as given (`None`: unset).
fn child(ci: Option<&str>, log: &std::path::Path) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([TEST, "--exact", "--test-threads=1"])
        .env(CHILD, "1")
        .env(skip::LOG_ENV, log)
        .env_remove("CI");
    if let Some(v) = ci {
        cmd.env("CI", v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_missing_prerequisite_fails_under_ci_and_is_loud_and_logged_elsewhere() {
    if std::env::var_os(CHILD).is_some() {
        if !skip::require(false, WHAT) {
            return;
        }
        unreachable!("require(false) returned true");
    }
    let line = format!("SKIPPED: skip_selftest::{TEST}: missing {WHAT}");
    let dir = tempfile::tempdir().unwrap();
    for ci in [None, Some(""), Some("0"), Some("false"), Some("False")] {
        let log = dir.path().join("skips.log");
        let _ = fs::remove_file(&log);
        let out = child(ci, &log);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "CI={ci:?}: a skip passes\n{stdout}\n{stderr}"
        );
        assert_eq!(
            hostile::test_counts(&stdout),
            Some((1, 1)),
            "CI={ci:?}\n{stdout}"
        );
        assert!(
            stderr.lines().any(|l| l == line),
            "CI={ci:?}: the SKIPPED line on fd 2 despite libtest's capture\n{stderr}"
        );
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            format!("{line}\n"),
            "CI={ci:?}: one line in $MAILMFA_SKIP_LOG"
        );
    }
    for ci in ["1", "true", "yes", "TRUE"] {
        let log = dir.path().join("skips.log");
        let _ = fs::remove_file(&log);
        let out = child(Some(ci), &log);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "CI={ci}: a missing prerequisite fails\n{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "skip_selftest::{TEST}: missing {WHAT} -- CI is set"
            )),
            "CI={ci}: the failure names the prerequisite\n{stdout}"
        );
        assert!(
            stdout.contains("test result: FAILED. 0 passed; 1 failed"),
            "{stdout}"
        );
        assert!(!log.exists(), "CI={ci}: a failure is not logged as a skip");
    }
}
