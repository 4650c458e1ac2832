//! The Debian package (issue 16). The man pages in man/ render with no warning from groff or
//! man and are found by lexgrog, and mailmfa.toml(5) names every key the parsers accept; the
//! .deb that scripts/deb.sh built (scripts/test.sh runs it first) is installed with apt into a
//! throwaway root (tests/package/: an overlay of `/` in a private mount namespace), checked
//! there (file list, modes, owners, the conffile, the account, `man`, `mailmfa doctor`, a
//! Dovecot-stack login through libpam with password+code and without), removed and purged.
//! Nothing of this machine's /etc/pam.d, /etc/mailmfa, dpkg database or accounts is written.

mod hostile;
mod package;
#[allow(unused_imports)]
mod servers;
mod skip;

use mailmfa::config::Settings;
use mailmfa::otp::{Algorithm, Params};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The man pages, one per face: (file in man/, name, section).
const PAGES: &[(&str, &str, &str)] = &[
    ("mailmfa.1", "mailmfa", "1"),
    ("mailmfa.toml.5", "mailmfa.toml", "5"),
    ("pam_mailmfa.8", "pam_mailmfa", "8"),
    ("mailmfa-panel.8", "mailmfa-panel", "8"),
];

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

fn repo_file(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs a command and returns (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_man_page_renders_without_a_warning_and_lexgrog_finds_its_name() {
    let missing: Vec<&str> = ["groff", "man", "lexgrog"]
        .into_iter()
        .filter(|p| !package::have(p))
        .collect();
    if !skip::require_all(&missing) {
        return;
    }
    let mut in_dir: Vec<String> = fs::read_dir(man_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    in_dir.sort();
    let mut listed: Vec<String> = PAGES.iter().map(|p| p.0.to_string()).collect();
    listed.sort();
    assert_eq!(in_dir, listed, "man/ holds exactly the pages of PAGES");

    for (file, name, section) in PAGES {
        let path = man_dir().join(file);
        // Every warning groff knows, at lintian's width.
        let (ok, _, err) = run(Command::new("groff")
            .args(["-ww", "-z", "-man", "-Tutf8", "-rLL=80n"])
            .arg(&path));
        assert!(ok && err.is_empty(), "groff -ww on {file}: {err}");
        // What lintian runs (manpage-has-errors-from-man).
        let (ok, text, err) = run(Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(&path)
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80"));
        assert!(ok && err.is_empty(), "man --warnings on {file}: {err}");
        assert!(!text.is_empty());
        let (ok, out, err) = run(Command::new("lexgrog").arg(&path));
        assert!(ok, "lexgrog {file}: {out}{err}");
        assert!(
            out.contains(&format!("\"{name} - ")),
            "lexgrog finds the NAME line of {file}: {out}"
        );
        let th = repo_file(&format!("man/{file}"));
        let upper = name.to_uppercase().replace('-', "\\-");
        assert!(
            th.contains(&format!("\n.TH {upper} {section} ")),
            "{file} has .TH {upper} {section}"
        );
    }
}

/// The keys a `.TP` entry of `page` starts with (`.TP` then `.B key`), in the section that
/// begins with `.SH <from>` and ends at the next `.SH`.
fn keys_in_section(page: &str, from: &str) -> Vec<String> {
    let start = page
        .find(&format!("\n.SH {from}"))
        .unwrap_or_else(|| panic!("no .SH {from}"));
    let section = &page[start + 1..];
    let section = &section[..section[1..].find("\n.SH ").map_or(section.len(), |e| e + 1)];
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .filter_map(|w| w[1].strip_prefix(".B "))
        .map(|k| k.replace("\\-", "-"))
        .collect()
}

/// The quoted keys of the outermost match arms `"key" =>` between `start` and `end` in
/// `source` (arms indented deeper, such as the values of `reuse`, are not keys).
fn match_arm_keys(source: &str, start: &str, end: &str) -> Vec<String> {
    let from = source.find(start).expect("start marker");
    let body = &source[from..];
    let body = &body[..body.find(end).expect("end marker")];
    let arms: Vec<(usize, String)> = body
        .lines()
        .filter_map(|l| {
            let indent = l.len() - l.trim_start().len();
            let rest = l.trim().strip_prefix('"')?;
            let (key, tail) = rest.split_once('"')?;
            tail.trim_start()
                .starts_with("=>")
                .then(|| (indent, key.to_string()))
        })
        .collect();
    let outermost = arms.iter().map(|a| a.0).min().unwrap_or(0);
    arms.into_iter()
        .filter(|a| a.0 == outermost)
        .map(|a| a.1)
        .collect()
}

#[test]
fn mailmfa_toml_5_has_an_entry_for_every_key_the_parsers_accept() {
    let page = repo_file("man/mailmfa.toml.5");
    let documented = keys_in_section(&page, "KEYS");
    // The library's keys: the arms of Settings::set.
    let config = repo_file("src/config/settings.rs");
    let parsed = match_arm_keys(&config, "pub fn set(&mut self, key: &str", "unknown option");
    assert!(
        parsed.len() >= 20,
        "found the keys of Settings::set: {parsed:?}"
    );
    for key in &parsed {
        assert!(
            documented.contains(key),
            "mailmfa.toml(5) has no entry for `{key}`"
        );
    }
    for key in &documented {
        let err = Settings::default().set(key, "").err().unwrap_or_default();
        assert!(
            !err.starts_with("unknown option"),
            "mailmfa.toml(5) documents `{key}`, which the parser does not know"
        );
    }

    // The panel's keys: the fields of its [panel] table.
    let documented = keys_in_section(&page, "THE [panel] TABLE");
    let panel = repo_file("panel/src/config.rs");
    let raw = &panel[panel.find("struct Raw {").expect("struct Raw")..];
    let raw = &raw[..raw.find('}').unwrap()];
    let fields: Vec<String> = raw
        .lines()
        .filter_map(|l| l.trim().split_once(": Option<").map(|(k, _)| k.to_string()))
        .collect();
    assert!(fields.len() >= 10, "found the [panel] keys: {fields:?}");
    let mut sorted_doc = documented.clone();
    sorted_doc.sort();
    let mut sorted_fields = fields.clone();
    sorted_fields.sort();
    assert_eq!(
        sorted_doc, sorted_fields,
        "mailmfa.toml(5)'s [panel] entries are the panel's keys"
    );

    // The [notify] keys: the arms of NotifySettings::from_table.
    let mut documented = keys_in_section(&page, "THE [notify] TABLE");
    let notify = repo_file("src/notify/settings.rs");
    let mut parsed = match_arm_keys(&notify, "match key.as_str() {", "unknown option");
    assert!(parsed.len() >= 10, "found the [notify] keys: {parsed:?}");
    documented.sort();
    parsed.sort();
    assert_eq!(
        documented, parsed,
        "mailmfa.toml(5)'s [notify] entries are the parser's keys"
    );
}

/// pam_mailmfa(8) shows the lines of the packaged Dovecot example, the stack the package test
/// logs in through.
#[test]
fn the_dovecot_stack_of_pam_mailmfa_8_is_the_packaged_example() {
    let example = repo_file("pam.d-examples/dovecot-virtual");
    let page = repo_file("man/pam_mailmfa.8");
    let squash = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in example
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let line = squash(line);
        assert!(
            page.lines().any(|p| squash(p) == line),
            "pam_mailmfa(8) shows the example's line `{line}`"
        );
    }
}

/// The mailbox the package test enrols, and its password.
const LOGIN: &str = "alice@example.com";
const PASSWORD: &str = "T9D3K!px";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_package_installs_works_and_is_removed_and_purged_in_a_throwaway_root() {
    if hostile::role().is_some() {
        in_the_throwaway_root();
        return;
    }
    let deb = package::deb_path();
    if !skip::require(
        deb.is_file(),
        &format!("{} (made by scripts/deb.sh)", deb.display()),
    ) {
        return;
    }
    let tools: Vec<&str> = [
        "chroot",
        "mount",
        "umount",
        "apt-get",
        "pamtester",
        "readelf",
    ]
    .into_iter()
    .filter(|p| !package::have(p))
    .collect();
    if !skip::require_all(&tools) {
        return;
    }
    // This machine before and after: no mailmfa package, the same /etc/pam.d.
    let before = host_state();
    let ran = hostile::rerun_in_namespace(
        "the_package_installs_works_and_is_removed_and_purged_in_a_throwaway_root",
        &[(package::DEB_ENV, deb.display().to_string())],
    );
    if ran {
        assert_eq!(host_state(), before, "this machine was changed");
    }
}

/// What the test must not change on this machine: dpkg's view of mailmfa, /etc/pam.d's files
/// and contents, /etc/mailmfa and /var/lib/mailmfa, the mailmfa account.
fn host_state() -> String {
    let (_, dpkg, _) =
        run(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Abbrev}", "mailmfa"]));
    let mut pam: Vec<(String, Vec<u8>)> = fs::read_dir("/etc/pam.d")
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    pam.sort();
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    format!(
        "dpkg={dpkg:?} pam={pam:?} etc={} var={} account={}",
        Path::new("/etc/mailmfa").exists(),
        Path::new("/var/lib/mailmfa").exists(),
        passwd.lines().any(|l| l.starts_with("mailmfa:")),
    )
}

/// The child, in its private mount namespace: install, use, remove, purge.
fn in_the_throwaway_root() {
    let deb = PathBuf::from(hostile::var(package::DEB_ENV));
    let root = package::Root::new();
    // A fresh machine has none of these; this one might (scripts/install.sh).
    for leftover in [
        "/etc/mailmfa",
        "/var/lib/mailmfa",
        "/usr/local/sbin/mailmfa",
        "/usr/local/sbin/mailmfa-panel",
    ] {
        let _ = fs::remove_dir_all(root.path(leftover));
        let _ = fs::remove_file(root.path(leftover));
    }
    let had_account = fs::read_to_string(root.path("/etc/passwd"))
        .unwrap()
        .lines()
        .any(|l| l.starts_with("mailmfa:"));
    let inside = format!("/tmp/{}", package::deb_name());
    fs::copy(&deb, root.path(&inside)).unwrap();

    // 1. apt install ./mailmfa_*.deb: no error, nothing alarming from postinst.
    let out = root.run(&["apt-get", "install", "-y", &inside]);
    assert!(out.status.success(), "apt-get install failed");
    let said = String::from_utf8_lossy(&out.stdout).to_lowercase()
        + &String::from_utf8_lossy(&out.stderr).to_lowercase();
    for alarming in ["warning", "error", "fail", "cannot", "not found", "denied"] {
        assert!(
            !said.contains(alarming),
            "apt/postinst output says `{alarming}`: {said}"
        );
    }
    assert_eq!(
        root.ok(&["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "mailmfa"])
            .trim(),
        "ii"
    );

    // 2. The files, where Debian puts them, with their modes and owners.
    let module = "/usr/lib/x86_64-linux-gnu/security/pam_mailmfa.so";
    let listed = root.ok(&["dpkg", "-L", "mailmfa"]);
    for path in [
        module,
        "/usr/sbin/mailmfa",
        "/usr/sbin/mailmfa-panel",
        "/etc/mailmfa/mailmfa.toml",
        "/usr/share/man/man1/mailmfa.1.gz",
        "/usr/share/man/man5/mailmfa.toml.5.gz",
        "/usr/share/man/man8/pam_mailmfa.8.gz",
        "/usr/share/man/man8/mailmfa-panel.8.gz",
        "/usr/share/bash-completion/completions/mailmfa",
        "/usr/share/zsh/vendor-completions/_mailmfa",
        "/usr/share/fish/vendor_completions.d/mailmfa.fish",
        "/usr/share/doc/mailmfa/copyright",
        "/usr/share/doc/mailmfa/changelog.Debian.gz",
        "/usr/share/doc/mailmfa/examples/pam.d/dovecot-virtual",
        "/usr/share/doc/mailmfa/examples/pam.d/dovecot",
        "/usr/share/doc/mailmfa/examples/pam.d/smtp",
        "/usr/share/doc/mailmfa/examples/fail2ban/filter.d/mailmfa.conf",
        "/usr/share/doc/mailmfa/examples/fail2ban/jail.d/mailmfa.conf",
        "/usr/share/doc/mailmfa/examples/systemd/mailmfa-panel.service",
        "/usr/share/doc/mailmfa/examples/nginx/mailmfa-panel.conf",
        "/usr/share/doc/mailmfa/examples/notify/code-wrong.txt",
        "/lib/systemd/system/mailmfa-notify.service",
        "/lib/systemd/system/mailmfa-notify.path",
        "/lib/systemd/system/mailmfa-notify.timer",
    ] {
        assert!(listed.lines().any(|l| l == path), "dpkg -L lists {path}");
    }
    // No file of the package in /etc/pam.d, nor a pam-auth-update profile.
    assert!(
        !listed
            .lines()
            .any(|l| l.starts_with("/etc/pam.d") || l.starts_with("/usr/share/pam-configs")),
        "the package changes no PAM stack"
    );
    let conffiles = root.ok(&["dpkg-query", "-W", "-f", "${Conffiles}", "mailmfa"]);
    assert!(
        conffiles.contains("/etc/mailmfa/mailmfa.toml"),
        "mailmfa.toml is a conffile: {conffiles}"
    );
    let root_owned = |path: &str, mode: u32| {
        assert_eq!(
            root.owner_mode(path),
            ("root".to_string(), "root".to_string(), mode),
            "{path}"
        )
    };
    root_owned(module, 0o644);
    root_owned("/usr/sbin/mailmfa", 0o755);
    root_owned("/usr/sbin/mailmfa-panel", 0o755);
    root_owned("/etc/mailmfa", 0o755);
    root_owned("/var/lib/mailmfa", 0o755);
    root_owned("/var/lib/mailmfa/users", 0o700);
    root_owned("/var/lib/mailmfa/state", 0o700);
    root_owned("/var/spool/mailmfa", 0o700);
    assert_eq!(
        root.owner_mode("/etc/mailmfa/mailmfa.toml"),
        ("root".to_string(), "mailmfa".to_string(), 0o640)
    );
    assert_eq!(
        root.owner_mode("/var/lib/mailmfa/panel"),
        ("mailmfa".to_string(), "mailmfa".to_string(), 0o700)
    );
    // The conffile is the example with the same (packaged) paths.
    assert_eq!(
        fs::read_to_string(root.path("/etc/mailmfa/mailmfa.toml")).unwrap(),
        repo_file("mailmfa.toml.example")
    );
    let unit = fs::read_to_string(
        root.path("/usr/share/doc/mailmfa/examples/systemd/mailmfa-panel.service"),
    )
    .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/sbin/mailmfa-panel "),
        "{unit}"
    );
    assert!(
        !unit.contains("/usr/local/"),
        "the packaged unit names packaged paths"
    );
    // The module: stripped, soname pam_mailmfa.so, -z nodelete (build.rs).
    let module_host = root.path(module);
    let (_, sections, _) = run(Command::new("readelf").args(["-S", "-W"]).arg(&module_host));
    assert!(
        !sections.contains(".symtab") && !sections.contains(".debug_"),
        "stripped"
    );
    let (_, dynamic, _) = run(Command::new("readelf").args(["-d", "-W"]).arg(&module_host));
    assert!(
        dynamic.contains("Library soname: [pam_mailmfa.so]"),
        "{dynamic}"
    );
    assert!(dynamic.contains("NODELETE"), "{dynamic}");

    // 3. The panel's account: a system account without a shell or home.
    let account = root.ok(&["getent", "passwd", "mailmfa"]);
    let fields: Vec<&str> = account.trim().split(':').collect();
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "a system uid: {account}");
    assert_eq!(fields[5], "/nonexistent");
    assert!(
        fields[6].ends_with("nologin") || fields[6].ends_with("false"),
        "{account}"
    );

    // 4. The man pages, read with man, by name; bash completes a command from the installed
    // completion.
    for (_, name, section) in PAGES {
        let text = root.ok(&["man", "-P", "cat", section, name]);
        assert!(text.contains("NAME"), "man {section} {name}: {text}");
    }
    let completed = root.ok(&[
        "bash",
        "-c",
        "source /usr/share/bash-completion/completions/mailmfa; COMP_WORDS=(mailmfa app-password r); \
         COMP_CWORD=2; _mailmfa mailmfa r app-password; echo \"${COMPREPLY[*]}\"",
    ]);
    assert_eq!(completed.trim(), "revoke", "bash completion");

    // 5. doctor runs on the packaged config: no error (warnings: no stack uses it yet).
    let out = root.run(&[
        "mailmfa",
        "doctor",
        "--config",
        "/etc/mailmfa/mailmfa.toml",
        "--json",
    ]);
    assert!(out.status.success(), "mailmfa doctor exits 0");
    let doctor: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doctor["errors"], 0, "{doctor}");

    // 6. The admin's edit the README shows: the packaged Dovecot stack as /etc/pam.d/dovecot,
    // a password file for pam_pwdfile; then a record made with enable --begin/--confirm.
    fs::copy(
        root.path("/usr/share/doc/mailmfa/examples/pam.d/dovecot-virtual"),
        root.path("/etc/pam.d/dovecot"),
    )
    .unwrap();
    fs::create_dir_all(root.path("/etc/dovecot")).unwrap();
    let hash = root.ok(&["openssl", "passwd", "-6", PASSWORD]);
    fs::write(
        root.path("/etc/dovecot/passwd.pam"),
        format!("{LOGIN}:{}\n", hash.trim()),
    )
    .unwrap();
    let begin = root.ok(&["mailmfa", "enable", LOGIN, "--begin", "--json"]);
    let begin: serde_json::Value = serde_json::from_str(&begin).unwrap();
    let secret_text = begin["secret"].as_str().unwrap().replace(' ', "");
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &secret_text)
        .expect("a base32 secret");
    let params = Params {
        secret: &secret,
        algorithm: Algorithm::SHA1,
        digits: begin["digits"].as_u64().unwrap() as u32,
        period: begin["period"].as_u64().unwrap(),
    };
    let step = params.step_at(now());
    let code = |step: u64| String::from_utf8(params.code(step).to_vec()).unwrap();
    root.ok(&[
        "mailmfa",
        "enable",
        LOGIN,
        "--confirm",
        &code(step),
        "--json",
    ]);
    assert_eq!(
        root.owner_mode(&format!("/var/lib/mailmfa/users/{LOGIN}.toml")),
        ("root".to_string(), "root".to_string(), 0o600)
    );
    // doctor, now with the stack in /etc/pam.d: still no error.
    let doctor: serde_json::Value =
        serde_json::from_str(&root.ok(&["mailmfa", "doctor", "--json"])).unwrap();
    assert_eq!(doctor["errors"], 0, "{doctor}");

    // 7. Logins through libpam, which finds pam_mailmfa.so by its name under the service
    // `dovecot`. The confirming code's step is used; the next step's code is within the window.
    let next = format!("{PASSWORD}{}\n", code(step + 1));
    let out = root.run_with_input(
        &[
            "pamtester",
            "-I",
            "rhost=127.0.0.1",
            "dovecot",
            LOGIN,
            "authenticate",
            "acct_mgmt",
        ],
        &next,
    );
    assert!(
        out.status.success(),
        "password+code logs in through pamtester"
    );
    let out = root.run_with_input(
        &["pamtester", "dovecot", LOGIN, "authenticate"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!out.status.success(), "the password alone does not log in");
    let out = root.run_with_input(
        &["mailmfa", "check", "--service", "dovecot", LOGIN],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reason: no_code"));

    // 7b. A real Dovecot of this machine, run inside the root with `passdb { driver = pam }`
    // on that stack: IMAP LOGIN with the same password+code from the same address (`reused`)
    // gets in, the password alone does not.
    let dovecot = InRootDovecot::start(&root);
    let same = format!("{PASSWORD}{}", code(step + 1));
    let from = std::net::Ipv4Addr::LOCALHOST;
    assert!(
        servers::imap_login(dovecot.addr, from, LOGIN, &same).is_ok(),
        "Dovecot IMAP with password+code on the packaged module:\n{}",
        dovecot.log(&root)
    );
    assert!(
        !servers::imap_login(dovecot.addr, from, LOGIN, PASSWORD).is_ok(),
        "Dovecot IMAP with the password alone"
    );
    drop(dovecot);

    // 8. apt remove: the programs go, the conffile and the records stay.
    let out = root.run(&["apt-get", "remove", "-y", "mailmfa"]);
    assert!(out.status.success(), "apt-get remove");
    assert_eq!(
        root.ok(&["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "mailmfa"])
            .trim(),
        "rc"
    );
    for gone in [
        module,
        "/usr/sbin/mailmfa",
        "/usr/sbin/mailmfa-panel",
        "/usr/share/man/man8/pam_mailmfa.8.gz",
    ] {
        assert!(!root.exists(gone), "{gone} is removed");
    }
    for kept in [
        "/etc/mailmfa/mailmfa.toml",
        "/var/lib/mailmfa/state",
        &format!("/var/lib/mailmfa/users/{LOGIN}.toml"),
    ] {
        assert!(root.exists(kept), "{kept} stays after remove");
    }

    // 9. apt purge: /etc/mailmfa and /var/lib/mailmfa go, the account stays.
    let out = root.run(&["apt-get", "purge", "-y", "mailmfa"]);
    assert!(out.status.success(), "apt-get purge");
    let (_, status, _) = run(Command::new("chroot").arg(root.path("/")).args([
        "dpkg-query",
        "-W",
        "-f",
        "${db:Status-Abbrev}",
        "mailmfa",
    ]));
    assert!(
        !status.starts_with("ii") && !status.starts_with("rc"),
        "purged: {status:?}"
    );
    assert!(!root.exists("/etc/mailmfa"), "/etc/mailmfa is purged");
    assert!(
        !root.exists("/var/lib/mailmfa"),
        "/var/lib/mailmfa is purged"
    );
    assert!(
        !root.exists("/var/spool/mailmfa"),
        "the notifications' spool is purged"
    );
    assert!(
        root.ok(&["getent", "passwd", "mailmfa"])
            .starts_with("mailmfa:"),
        "the account stays (had it before: {had_account})"
    );
}

/// A Dovecot master started inside the throwaway root (`chroot ROOT dovecot -F`), listening
/// for IMAP on a free port of 127.0.0.1, its PAM service `dovecot` (the root's /etc/pam.d);
/// stopped on drop, before the root is unmounted.
struct InRootDovecot {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    _port: servers::PortLease,
}

impl InRootDovecot {
    fn start(root: &package::Root) -> InRootDovecot {
        let port = servers::free_port();
        let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port.port()));
        fs::create_dir_all(root.path("/etc/dovecot-mailmfa")).unwrap();
        fs::create_dir_all(root.path("/tmp/mailhome")).unwrap();
        std::os::unix::fs::chown(root.path("/tmp/mailhome"), Some(65534), Some(65534)).unwrap();
        let conf = format!(
            "base_dir = /run/dovecot-mailmfa\n\
             state_dir = /var/lib/dovecot-mailmfa\n\
             log_path = /var/log/dovecot-mailmfa.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             auth_failure_delay = 0\n\
             mail_location = maildir:~/Maildir\n\
             first_valid_uid = 65534\n\
             passdb {{\n  driver = pam\n  args = dovecot\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home=/tmp/mailhome/%u allow_all_users=yes\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
            port.port()
        );
        fs::write(root.path("/etc/dovecot-mailmfa/dovecot.conf"), conf).unwrap();
        let child = Command::new("chroot")
            .arg(root.path("/"))
            .args(["dovecot", "-F", "-c", "/etc/dovecot-mailmfa/dovecot.conf"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot in the root");
        let mut dovecot = InRootDovecot {
            child,
            addr,
            _port: port,
        };
        servers::wait_until(
            std::time::Duration::from_secs(15),
            "Dovecot listens",
            || {
                if let Ok(Some(status)) = dovecot.child.try_wait() {
                    panic!("dovecot exited: {status}\n{}", dovecot.log(root));
                }
                std::net::TcpStream::connect(addr).is_ok()
            },
        );
        dovecot
    }

    /// Dovecot's log inside the root.
    fn log(&self, root: &package::Root) -> String {
        fs::read_to_string(root.path("/var/log/dovecot-mailmfa.log")).unwrap_or_default()
    }
}

impl Drop for InRootDovecot {
    fn drop(&mut self) {
        // SIGTERM to the master, which stops its children, then reap it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
