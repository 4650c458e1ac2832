// The notifier's systemd units (issue 18, docs/notifications.md):
// contrib/systemd/mailmfa-notify.{service,path,timer} pass `systemd-analyze verify` (with
// ExecStart pointing at the built binary and mailmfa(1) from man/ on MANPATH), the service is
// hardened without anything that would stop Postfix's set-gid postdrop, and may write what the
// notifier writes; the panel's unit may spool; the package installs the three units and
// enables none.
// Owns: tests/notify_units.rs. The units: contrib/systemd/.

mod skip;

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 3] = [
    "mailmfa-notify.service",
    "mailmfa-notify.path",
    "mailmfa-notify.timer",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn unit(name: &str) -> String {
    read(&format!("contrib/systemd/{name}"))
}

/// The values of `key=` in `text`, in order (comments skipped).
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// The three units, as shipped but for ExecStart (the built binary: systemd-analyze checks
/// that it exists), verify without a word about them.
#[test]
fn the_notifier_units_pass_systemd_analyze_verify() {
    let Some(analyze) = find_program("systemd-analyze") else {
        skip::missing("systemd-analyze");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exec = Path::new(env!("CARGO_BIN_EXE_mailmfa"));
    for name in UNITS {
        let text = unit(name);
        let text = if name.ends_with(".service") {
            assert!(
                text.contains("\nExecStart=mailmfa notify "),
                "ExecStart changed: {text}"
            );
            text.replace(
                "\nExecStart=mailmfa ",
                &format!("\nExecStart={} ", exec.display()),
            )
        } else {
            text
        };
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // Documentation=man:mailmfa(1) is checked with man(1): the page of this tree.
    let man = dir.path().join("man");
    std::fs::create_dir_all(man.join("man1")).unwrap();
    std::fs::copy(repo().join("man/mailmfa.1"), man.join("man1/mailmfa.1")).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .args(UNITS.iter().map(|u| dir.path().join(u)))
        .env("MANPATH", &man)
        .output()
        .expect("systemd-analyze verify");
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| UNITS.iter().any(|u| l.contains(u)))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{err}",
        out.status
    );
}

/// The service: one pass as root, the system read-only but for the spool, the records, the
/// state and Postfix's maildrop; no capability to mount or remount; and nothing that sets
/// no_new_privs, which would make postdrop's set-gid bit void (sendmail could not queue).
#[test]
fn the_service_is_hardened_and_still_runs_postdrop() {
    let service = unit("mailmfa-notify.service");
    assert_eq!(values(&service, "Type"), ["oneshot"]);
    assert_eq!(
        values(&service, "ExecStart"),
        ["mailmfa notify --config /etc/mailmfa/mailmfa.toml"]
    );
    assert!(values(&service, "User").is_empty(), "runs as root");
    assert_eq!(values(&service, "ProtectSystem"), ["strict"]);
    let rw: Vec<&str> = values(&service, "ReadWritePaths")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    for path in [
        "/var/spool/mailmfa",
        "/var/lib/mailmfa/users",
        "/var/lib/mailmfa/state",
        "-/var/spool/postfix/maildrop",
    ] {
        assert!(rw.contains(&path), "ReadWritePaths lacks {path}: {rw:?}");
    }
    assert_eq!(rw.len(), 4, "ReadWritePaths: {rw:?}");
    let caps: Vec<&str> = values(&service, "CapabilityBoundingSet")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    assert!(!caps.is_empty(), "no CapabilityBoundingSet");
    assert!(
        !caps.iter().any(|c| c.starts_with('~')) && !caps.contains(&"CAP_SYS_ADMIN"),
        "CAP_SYS_ADMIN must go (ProtectSystem= is only as strong as that): {caps:?}"
    );
    // Without CAP_SYS_ADMIN each of these implies NoNewPrivileges=yes (systemd.exec(5)).
    for key in [
        "NoNewPrivileges",
        "RestrictSUIDSGID",
        "SystemCallFilter",
        "SystemCallArchitectures",
        "SystemCallLog",
        "RestrictAddressFamilies",
        "RestrictNamespaces",
        "RestrictRealtime",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectClock",
        "ProtectHostname",
        "DynamicUser",
    ] {
        assert!(
            values(&service, key).is_empty(),
            "{key}= sets no_new_privs: postdrop would lose its set-gid"
        );
    }
    for (key, value) in [
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("UMask", "0077"),
        ("StartLimitIntervalSec", "0"),
    ] {
        assert_eq!(values(&service, key), [value], "{key}");
    }
    assert!(
        values(&service, "WantedBy").is_empty(),
        "the service is started by the path and the timer, never enabled itself"
    );
}

/// The path unit watches the spool's new/, the timer runs every minute; both start the
/// service and are enabled into the usual targets.
#[test]
fn the_path_watches_the_spool_and_the_timer_runs_every_minute() {
    let path = unit("mailmfa-notify.path");
    assert_eq!(
        values(&path, "DirectoryNotEmpty"),
        ["/var/spool/mailmfa/new"]
    );
    assert_eq!(values(&path, "Unit"), ["mailmfa-notify.service"]);
    assert_eq!(values(&path, "WantedBy"), ["paths.target"]);
    let timer = unit("mailmfa-notify.timer");
    assert_eq!(values(&timer, "OnCalendar"), ["minutely"]);
    assert_eq!(values(&timer, "Unit"), ["mailmfa-notify.service"]);
    assert_eq!(values(&timer, "WantedBy"), ["timers.target"]);
}

/// The User Panel appends events too: its unit lets it write the spool (`-`: a machine
/// without one still starts the panel).
#[test]
fn the_panel_unit_may_write_the_spool() {
    let panel = unit("mailmfa-panel.service");
    let rw: Vec<&str> = values(&panel, "ReadWritePaths")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    assert!(rw.contains(&"-/var/spool/mailmfa"), "{rw:?}");
}

/// The package installs the three units where Debian's units are, makes the spool, enables
/// and starts nothing (notifications are off until `[notify] enabled = true`), and purge
/// removes the spool.
#[test]
fn the_package_installs_the_units_and_enables_none() {
    let cargo = read("Cargo.toml");
    for name in UNITS {
        let asset = format!("[\"contrib/systemd/{name}\", \"lib/systemd/system/\", \"644\"]");
        assert!(cargo.contains(&asset), "Cargo.toml lacks the asset {asset}");
    }
    let postinst = read("debian/postinst");
    assert!(
        postinst.contains("install -d -m 0700 -o root -g root /var/spool/mailmfa"),
        "postinst makes the spool"
    );
    let commands: Vec<&str> = postinst
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for enabling in [
        "deb-systemd-helper enable",
        "systemctl enable",
        "systemctl start",
    ] {
        assert!(
            !commands.iter().any(|l| l.contains(enabling)),
            "postinst must not `{enabling}`"
        );
    }
    let postrm = read("debian/postrm");
    assert!(
        postrm
            .lines()
            .any(|l| l.trim().starts_with("rm -rf ") && l.contains("/var/spool/mailmfa")),
        "purge removes the spool"
    );
}
