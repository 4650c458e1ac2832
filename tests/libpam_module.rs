//! The built `pam_mailmfa.so` driven through the real libpam (`pam_start_confdir`) with the
//! stacks of `pam.d-examples/`: what a mail server sees at each login.

mod fixture;
mod servers;
mod skip;
mod sql;

use fixture::{code, module_path, wait_for_step_margin, Fixture};
use sql::{Place, Records};
use std::fs;
use std::os::unix::fs::PermissionsExt;

const PW: &str = "T9D3K!px";
const IP1: Option<&str> = Some("127.0.0.2");
const IP2: Option<&str> = Some("127.0.0.3");

/// A fixture keeping its records as `records` says, with the virtual-mailbox stack installed
/// as service `mail`, and `alice` (MFA) and `bob` (no MFA) in the password file; `None` (a
/// loud skip) when the records' database cannot be started here.
fn virtual_stack(records: Records, args: &str) -> Option<(Place, mailmfa::record::Record)> {
    let f = records.fixture("")?;
    f.install_example("dovecot-virtual", "mail", args);
    f.add_password("alice@example.com", PW);
    f.add_password("bob@example.com", "secret123456");
    let record = f.enable("alice@example.com");
    Some((f, record))
}

/// [`virtual_stack`] with the records in files.
fn files_stack(args: &str) -> (Place, mailmfa::record::Record) {
    virtual_stack(Records::Files, args).expect("files need no server")
}

// The module's suite, once with the records in files and once in each SQL server (issue 15);
// the tests of record files themselves (damaged, unsafe, a missing record directory) and of
// the module's exports stay below, files only.
for_each_records!(
    right_password_and_code_log_in,
    wrong_code_is_refused_and_counted,
    wrong_password_with_right_code_neither_consumes_the_code_nor_moves_the_throttle,
    previous_and_next_steps_are_accepted,
    a_used_code_is_reused_by_the_same_client_and_refused_from_another,
    reuse_never_accepts_a_code_once,
    a_mailbox_without_mfa_passes_through_untouched_even_when_its_password_ends_in_digits,
    no_code_is_refused,
    case_variants_of_a_login_with_mfa_still_need_the_code,
    throttle_refuses_the_right_code_after_too_many_failures_from_one_client,
    the_next_module_receives_exactly_the_password_part,
    require_denies_logins_without_a_record,
    a_damaged_state_file_is_rebuilt,
    a_missing_state_directory_denies_mfa_logins_only,
    the_smtp_example_works_without_a_client_address,
);

fn reason(r: &mailmfa::pam::client::Response) -> &str {
    r.reason.as_deref().unwrap_or("")
}

fn right_password_and_code_log_in(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    let r = f.login(
        "mail",
        "alice@example.com",
        &format!("{PW}{}", code(&rec, 0)),
        IP1,
    );
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "ok");
    let state = f.state("alice@example.com").unwrap();
    assert_eq!(state.last_client.as_deref(), Some("127.0.0.2"));
}

fn wrong_code_is_refused_and_counted(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    let right = code(&rec, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = f.login("mail", "alice@example.com", &format!("{PW}{wrong}"), IP1);
    assert!(!r.success());
    assert_eq!(reason(&r), "bad_code");
    assert_eq!(f.state("alice@example.com").unwrap().failures.len(), 1);
}

fn wrong_password_with_right_code_neither_consumes_the_code_nor_moves_the_throttle(
    records: Records,
) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    let c = code(&rec, 0);
    let r = f.login("mail", "alice@example.com", &format!("WRONG{c}"), IP1);
    assert!(!r.success());
    assert_eq!(reason(&r), "code_split", "verify must not have run");
    assert!(f.state("alice@example.com").is_none(), "no state written");
    // The same code still works from another client: it was not consumed.
    let r = f.login("mail", "alice@example.com", &format!("{PW}{c}"), IP2);
    assert!(r.success(), "{r:?}");
}

fn previous_and_next_steps_are_accepted(records: Records) {
    wait_for_step_margin(3);
    for steps in [-1, 1] {
        let Some((f, rec)) = virtual_stack(records, "") else {
            return;
        };
        let r = f.login(
            "mail",
            "alice@example.com",
            &format!("{PW}{}", code(&rec, steps)),
            IP1,
        );
        assert!(r.success(), "step {steps}: {r:?}");
    }
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    let r = f.login(
        "mail",
        "alice@example.com",
        &format!("{PW}{}", code(&rec, 2)),
        IP1,
    );
    assert_eq!(
        reason(&r),
        "bad_code",
        "two steps ahead is outside the default window"
    );
}

fn a_used_code_is_reused_by_the_same_client_and_refused_from_another(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    wait_for_step_margin(2);
    let s = format!("{PW}{}", code(&rec, 0));
    assert!(f.login("mail", "alice@example.com", &s, IP1).success());
    let again = f.login("mail", "alice@example.com", &s, IP1);
    assert!(again.success(), "{again:?}");
    assert_eq!(reason(&again), "reused");
    let other = f.login("mail", "alice@example.com", &s, IP2);
    assert!(!other.success());
    assert_eq!(reason(&other), "replayed");
    let no_rhost = f.login("mail", "alice@example.com", &s, None);
    assert_eq!(reason(&no_rhost), "replayed", "no client address, no reuse");
}

fn reuse_never_accepts_a_code_once(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "reuse=never") else {
        return;
    };
    let s = format!("{PW}{}", code(&rec, 0));
    assert!(f.login("mail", "alice@example.com", &s, IP1).success());
    assert_eq!(
        reason(&f.login("mail", "alice@example.com", &s, IP1)),
        "replayed"
    );
}

fn a_mailbox_without_mfa_passes_through_untouched_even_when_its_password_ends_in_digits(
    records: Records,
) {
    let Some((f, _)) = virtual_stack(records, "") else {
        return;
    };
    let r = f.login("mail", "bob@example.com", "secret123456", IP1);
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "no_mfa");
    let r = f.login("mail", "bob@example.com", "secret", IP1);
    assert!(!r.success(), "the password module still decides");
}

fn no_code_is_refused(records: Records) {
    let Some((f, _)) = virtual_stack(records, "") else {
        return;
    };
    let r = f.login("mail", "alice@example.com", PW, IP1);
    assert!(!r.success());
    assert_eq!(reason(&r), "no_code");
}

fn case_variants_of_a_login_with_mfa_still_need_the_code(records: Records) {
    let Some((f, _)) = virtual_stack(records, "") else {
        return;
    };
    // The password file knows only the lower-case name, but the split must still demand
    // a code: the variant reaches alice's record, never "no MFA".
    let r = f.login("mail", "Alice@Example.COM", PW, IP1);
    assert_eq!(reason(&r), "no_code");
}

#[test]
fn unsafe_login_names_are_denied_in_split() {
    let (f, _) = files_stack("");
    for user in [
        "../alice@example.com",
        "alice@example.com ",
        "al ice",
        ".alice",
        "a/b",
    ] {
        let r = f.login("mail", user, &format!("{PW}123456"), IP1);
        assert!(!r.success());
        assert_eq!(reason(&r), "invalid_login", "{user:?}");
    }
}

fn throttle_refuses_the_right_code_after_too_many_failures_from_one_client(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "max_failures=3") else {
        return;
    };
    for wrong in ["000001", "000002", "000003", "000003"] {
        let r = f.login("mail", "alice@example.com", &format!("{PW}{wrong}"), IP1);
        assert!(!r.success());
    }
    assert_eq!(
        f.state("alice@example.com").unwrap().failures.len(),
        3,
        "a repeat counts once"
    );
    let right = format!("{PW}{}", code(&rec, 0));
    let r = f.login("mail", "alice@example.com", &right, IP1);
    assert_eq!(reason(&r), "throttled");
    let r = f.login("mail", "alice@example.com", &right, IP2);
    assert!(r.success(), "another client is not throttled: {r:?}");
}

fn the_next_module_receives_exactly_the_password_part(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    let out = f.dir.path().join("authtok.out");
    let script = f.dir.path().join("show-authtok.sh");
    fs::write(&script, format!("#!/bin/sh\ncat > {}\n", out.display())).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o700)).unwrap();
    f.install_stack(
        "probe",
        &format!(
            "auth requisite pam_mailmfa.so split\n\
             auth optional pam_exec.so quiet expose_authtok {}\n\
             auth requisite pam_pwdfile.so pwdfile=/etc/dovecot/passwd.pam nodelay\n\
             auth required pam_mailmfa.so verify\n\
             account required pam_permit.so\n",
            script.display()
        ),
    );
    let r = f.login(
        "probe",
        "alice@example.com",
        &format!("{PW}{}", code(&rec, 0)),
        IP1,
    );
    assert!(r.success(), "{r:?}");
    let seen = fs::read(&out).unwrap();
    assert_eq!(seen.strip_suffix(b"\0").unwrap_or(&seen), PW.as_bytes());
}

#[test]
fn verify_without_split_denies_every_login() {
    let (f, _) = files_stack("");
    f.install_stack(
        "nosplit",
        "auth requisite pam_pwdfile.so pwdfile=/etc/dovecot/passwd.pam nodelay\n\
         auth required pam_mailmfa.so verify\n\
         account required pam_permit.so\n",
    );
    let r = f.login("nosplit", "bob@example.com", "secret123456", IP1);
    assert!(!r.success());
    assert_eq!(reason(&r), "no_split");
}

#[test]
fn bad_arguments_and_config_deny() {
    let (f, _) = files_stack("windw=2");
    let r = f.login("mail", "bob@example.com", "secret123456", IP1);
    assert!(!r.success(), "even a login without MFA is denied");
    assert_eq!(reason(&r), "bad_config");

    let (f, _) = files_stack("");
    fs::write(&f.config, "window = \"wide\"\n").unwrap();
    assert_eq!(
        reason(&f.login("mail", "bob@example.com", "secret123456", IP1)),
        "bad_config"
    );
    fs::remove_file(&f.config).unwrap();
    assert_eq!(
        reason(&f.login("mail", "bob@example.com", "secret123456", IP1)),
        "bad_config"
    );
}

fn require_denies_logins_without_a_record(records: Records) {
    let Some((f, _)) = virtual_stack(records, "require") else {
        return;
    };
    let r = f.login("mail", "bob@example.com", "secret123456", IP1);
    assert!(!r.success());
    assert_eq!(reason(&r), "mfa_required");
}

#[test]
fn damaged_or_unsafe_records_deny() {
    let (f, _) = files_stack("");
    let path = f.record_path("alice@example.com");
    let good = fs::read_to_string(&path).unwrap();
    let login = |f: &Fixture| f.login("mail", "alice@example.com", &format!("{PW}123456"), IP1);

    fs::write(&path, &good[..good.len() / 2]).unwrap();
    assert_eq!(reason(&login(&f)), "bad_record");

    fs::write(&path, &good).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(reason(&login(&f)), "unsafe_record");

    fs::remove_file(&path).unwrap();
    let elsewhere = f.dir.path().join("elsewhere.toml");
    fs::write(&elsewhere, &good).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    assert_eq!(reason(&login(&f)), "unsafe_record");

    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    assert_eq!(reason(&login(&f)), "record_unreadable");
}

fn a_damaged_state_file_is_rebuilt(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    fs::write(f.state_path("alice@example.com"), "garbage = [").unwrap();
    let step = rec.params().step_at(fixture::now());
    let r = f.login(
        "mail",
        "alice@example.com",
        &format!("{PW}{}", code(&rec, 0)),
        IP1,
    );
    // The rebuilt state cannot know whether the current code was used before the damage: its
    // last step starts at "now + window" (tests/hostile_state_damage.rs has the rest).
    assert!(!r.success(), "{r:?}");
    assert_eq!(reason(&r), "replayed");
    let last = f.state("alice@example.com").unwrap().last_step;
    assert!(last >= Some(step + f.settings.window), "{last:?}");
}

fn a_missing_state_directory_denies_mfa_logins_only(records: Records) {
    let Some((f, rec)) = virtual_stack(records, "") else {
        return;
    };
    fs::remove_dir_all(&f.settings.state_dir).unwrap();
    let r = f.login(
        "mail",
        "alice@example.com",
        &format!("{PW}{}", code(&rec, 0)),
        IP1,
    );
    assert!(!r.success());
    assert_eq!(reason(&r), "state_dir_unusable");
    assert!(f
        .login("mail", "bob@example.com", "secret123456", IP1)
        .success());
}

#[test]
fn a_missing_record_directory_denies_everyone() {
    let (f, _) = files_stack("");
    fs::remove_dir_all(&f.settings.record_dir).unwrap();
    let r = f.login("mail", "bob@example.com", "secret123456", IP1);
    assert!(!r.success());
    assert_eq!(reason(&r), "record_dir_unusable");
}

fn the_smtp_example_works_without_a_client_address(records: Records) {
    let Some(f) = records.fixture("") else {
        return;
    };
    f.install_example("smtp", "smtp", "");
    f.add_password("alice@example.com", PW);
    let rec = f.enable("alice@example.com");
    let r = f.login(
        "smtp",
        "alice@example.com",
        &format!("{PW}{}", code(&rec, 0)),
        None,
    );
    assert!(r.success(), "{r:?}");
}

/// Design §7: no async runtime, web or SQL crate is reachable from the module. The package's
/// normal dependency graph (the module's and the command's; the panel is a package of its
/// own) holds none, so the .so cannot link one; the SQL records are read by the module's own
/// small blocking clients (src/store/sql/postgres/, mysql/).
#[test]
fn the_modules_graph_has_no_async_runtime_web_or_sql_crate() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            "mailmfa",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(fixture::repo())
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(crates.contains(&"rustls"), "not the module's graph: {text}");
    for banned in [
        "tokio",
        "mio",
        "async-std",
        "smol",
        "futures",
        "futures-util",
        "hyper",
        "axum",
        "tower",
        "reqwest",
        "ureq",
        "postgres",
        "tokio-postgres",
        "postgres-protocol",
        "sqlx",
        "mysql",
        "mysql_common",
        "diesel",
        "rusqlite",
        "pq-sys",
        "mysqlclient-sys",
        "libsqlite3-sys",
        "redis",
    ] {
        assert!(
            !crates.contains(&banned),
            "`{banned}` is in the module's graph"
        );
    }
}

#[test]
fn the_module_exports_only_pam_entry_points() {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(module_path())
        .output()
        .expect("nm (binutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(!names.is_empty(), "nm printed no symbols");
    for name in &names {
        assert!(name.starts_with("pam_sm_"), "unexpected export {name}");
    }
    assert!(names.contains(&"pam_sm_authenticate"));
}

#[test]
fn a_panic_inside_the_module_denies_and_leaves_the_process_alive() {
    if !skip::require(
        cfg!(feature = "fault-injection"),
        "the build feature `fault-injection` (cargo ... --all-features)",
    ) {
        return;
    }
    let (f, _) = files_stack("");
    f.install_stack(
        "panics",
        "auth requisite pam_mailmfa.so split fault_inject_panic\naccount required pam_permit.so\n",
    );
    let r = f.login("panics", "bob@example.com", "secret123456", IP1);
    assert_eq!(r.authenticate, libpam_sys::PAM_SYSTEM_ERR);
    assert_eq!(reason(&r), "internal_error");
    // Still alive, and the next login works.
    assert!(f
        .login("mail", "bob@example.com", "secret123456", IP1)
        .success());
}
