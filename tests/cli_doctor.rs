//! `mailmfa doctor`: a healthy set-up passes, and each broken piece (a stack without
//! `verify`, a missing account line, Dovecot's auth cache in front of PAM, saslauthd's
//! credential cache, an unusable directory, a parent directory that others may write) is
//! named with its fix. Dovecot's settings are read with the real `doveconf`.

mod cli_support;
mod skip;

use cli_support::*;
use std::fs;

const GOOD: &str =
    "auth [success=done ignore=ignore auth_err=bad default=die] pam_mailmfa.so split\n\
                    auth requisite pam_pwdfile.so pwdfile=/etc/dovecot/passwd.pam\n\
                    auth required pam_mailmfa.so verify\n\
                    account required pam_mailmfa.so account pwdfile=/etc/dovecot/passwd.pam\n";

struct World {
    env: Env,
    pam: std::path::PathBuf,
    sasl: std::path::PathBuf,
    dovecot: std::path::PathBuf,
}

fn world(dovecot_extra: &str) -> World {
    let env = Env::new();
    let pam = env.dir.path().join("pam.d");
    fs::create_dir(&pam).unwrap();
    fs::write(pam.join("dovecot"), GOOD).unwrap();
    fs::write(pam.join("other"), "auth required pam_deny.so\n").unwrap();
    let sasl = env.dir.path().join("saslauthd");
    fs::write(&sasl, "START=yes\nOPTIONS=\"-m /var/run/saslauthd -r\"\n").unwrap();
    let dovecot = env.dir.path().join("dovecot.conf");
    fs::write(
        &dovecot,
        format!(
            "base_dir = {dir}/run\nssl = no\npassdb {{\n  driver = pam\n  args = {dovecot_extra} dovecot\n}}\n\
             userdb {{\n  driver = static\n  args = uid=5000 gid=5000 home={dir}/home/%u\n}}\n{}",
            if dovecot_extra.is_empty() { "" } else { "auth_cache_size = 10M\n" },
            dir = env.dir.path().display()
        ),
    )
    .unwrap();
    World {
        env,
        pam,
        sasl,
        dovecot,
    }
}

fn doctor(w: &World) -> Run {
    w.env.run(&[
        "doctor",
        "--json",
        "--pam-dir",
        w.pam.to_str().unwrap(),
        "--saslauthd-defaults",
        w.sasl.to_str().unwrap(),
        "--dovecot-config",
        w.dovecot.to_str().unwrap(),
    ])
}

fn levels(run: &Run) -> Vec<(String, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_string(),
                f["what"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn have_doveconf() -> bool {
    have_tool("doveconf")
}

#[test]
fn a_healthy_set_up_passes() {
    if !have_doveconf() {
        return;
    }
    let w = world("");
    let run = doctor(&w);
    run.assert_code(0);
    let found = levels(&run);
    // Everything ok; notifications off is said for information only.
    assert!(
        found
            .iter()
            .all(|(level, what)| level == "ok"
                || (level == "info" && what.starts_with("notify: off"))),
        "{found:#?}"
    );
    assert!(found
        .iter()
        .any(|(_, what)| what.starts_with("dovecot: split, password module, verify")));
}

#[test]
fn broken_pieces_are_named_with_their_fix() {
    if !have_doveconf() {
        return;
    }
    let w = world("cache_key=%u");
    fs::write(
        w.pam.join("imap"),
        GOOD.replace("auth required pam_mailmfa.so verify\n", "")
            .replace(
                "account required pam_mailmfa.so account pwdfile=/etc/dovecot/passwd.pam\n",
                "",
            ),
    )
    .unwrap();
    fs::write(&w.sasl, "OPTIONS=\"-c -m /var/run/saslauthd\"\n").unwrap();
    fs::remove_dir(&w.env.state).unwrap();
    let run = doctor(&w);
    run.assert_code(1);
    let found = levels(&run);
    let has = |level: &str, text: &str| found.iter().any(|(l, w)| l == level && w.contains(text));
    assert!(has("error", "imap: `split` without `verify`"), "{found:#?}");
    assert!(has("error", "imap: no `account` line"), "{found:#?}");
    assert!(
        has("ok", "dovecot: split, password module, verify"),
        "{found:#?}"
    );
    assert!(
        has(
            "warning",
            "auth cache answers a repeated password+code from ANY address"
        ),
        "{found:#?}"
    );
    assert!(has("warning", "saslauthd runs with -c"), "{found:#?}");
    assert!(has("warning", "saslauthd runs without -r"), "{found:#?}");
    assert!(has("error", "does not exist"), "{found:#?}");
    assert_eq!(run.json()["errors"], 3);
}

#[test]
fn a_parent_directory_others_control_is_named_with_its_fix() {
    use std::os::unix::fs::PermissionsExt;
    let mut w = world("");
    // record_dir moved below a group-writable `lib`: whoever is in its group could swap it.
    let lib = w.env.dir.path().join("lib");
    fs::create_dir(&lib).unwrap();
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o775)).unwrap();
    let users = lib.join("users");
    fs::rename(&w.env.users, &users).unwrap();
    fs::write(
        &w.env.config,
        format!(
            "record_dir = \"{}\"\nstate_dir = \"{}\"\n",
            users.display(),
            w.env.state.display()
        ),
    )
    .unwrap();
    let run = doctor(&w);
    run.assert_code(1);
    let found = levels(&run);
    let fix = format!("chmod go-w {}", lib.display());
    assert!(
        found.iter().any(|(l, what)| l == "error"
            && what.starts_with(&users.display().to_string())
            && what.contains(&fix)),
        "{found:#?}"
    );

    // The config file below a world-writable directory.
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o755)).unwrap();
    let etc = w.env.dir.path().join("etc");
    fs::create_dir(&etc).unwrap();
    let config = etc.join("mailmfa.toml");
    fs::rename(&w.env.config, &config).unwrap();
    w.env.config = config;
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o757)).unwrap();
    let run = doctor(&w);
    run.assert_code(1);
    let found = levels(&run);
    let fix = format!("chmod go-w {}", etc.display());
    assert!(
        found
            .iter()
            .any(|(l, what)| l == "error" && what.contains(&fix)),
        "{found:#?}"
    );
}
