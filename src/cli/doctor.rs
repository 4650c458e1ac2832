//! `mailmfa doctor`: checks the whole set-up and says what to fix — the config file, the
//! record and state directories, every PAM service that uses pam_mailmfa.so (phases, order,
//! controls, the account line), Dovecot's auth cache and saslauthd's options (both caches
//! answer a repeated password+code without asking PAM, design §5), and with `state = "redis"`
//! the shared state server (connection, ACL, eviction, persistence:
//! [`mailmfa::store::redis::probe`]), and with `[notify]` on the notifier's spool and MTA
//! (`super::notify::doctor_findings`).
//!
//! Each check is a pure function of the text it reads, so the rules are unit-tested here and
//! the command only gathers the texts.

use super::command::Doctor;
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::Context;
use mailmfa::config::StateBackend;
use mailmfa::store::redis::probe;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Information only (such as the shared state server's version).
    Info,
    /// Works, but weaker or less convenient than it should be.
    Warning,
    /// Logins are refused, or a protection is missing.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One thing the doctor found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was found.
    pub what: String,
    /// How to fix it, if anything is to fix.
    pub fix: Option<String>,
}

/// A finding from its parts.
pub fn finding(level: Level, what: impl Into<String>, fix: Option<&str>) -> Finding {
    Finding {
        level,
        what: what.into(),
        fix: fix.map(str::to_string),
    }
}

/// With `record_owner` set, the web panel (running as that user) writes the records: the
/// record directory must be its own with mode 0700 (root's would keep the panel from making
/// files in it), and so must every record and pending file in it (a root-owned 0600 record
/// is one the panel cannot read).
fn record_owner_finding(dir: &Path, owner: u32) -> Finding {
    let name = mailmfa::users::name_of(owner).unwrap_or_else(|| owner.to_string());
    let shown = dir.display();
    let fix = format!("chown -R {name}: {shown}; chmod 0700 {shown}");
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return finding(Level::Error, format!("{shown}: {e}"), Some(&fix)),
    };
    if meta.uid() != owner || meta.mode() & 0o7777 != 0o700 {
        return finding(
            Level::Error,
            format!(
                "{shown} is owned by uid {} with mode {:04o}: the record owner {name} \
                 (record_owner) needs it as its own with mode 0700",
                meta.uid(),
                meta.mode() & 0o7777
            ),
            Some(&fix),
        );
    }
    let foreign = [dir.to_path_buf(), dir.join("pending")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file() && m.uid() != owner)
        .count();
    if foreign > 0 {
        return finding(
            Level::Error,
            format!(
                "{foreign} record or pending file(s) in {shown} are not owned by the record \
                 owner {name}: the panel cannot read or replace them"
            ),
            Some(&fix),
        );
    }
    finding(
        Level::Ok,
        format!("{shown} and its records belong to the record owner {name}, mode 0700"),
        None,
    )
}

/// Runs `doctor` with `--config` (given before the command or after it), if any.
pub fn run(p: &Doctor, config: Option<String>) -> CliResult {
    let mut findings = Vec::new();
    match Context::load(config.as_deref()) {
        Ok(ctx) => {
            findings.push(finding(
                Level::Ok,
                "the config file loads with the module's checks",
                None,
            ));
            for (dir, owners) in ctx.dirs() {
                findings.push(match super::check_dir(dir, owners) {
                    Ok(()) => finding(Level::Ok, format!("{} is usable", dir.display()), None),
                    Err(f) => finding(Level::Error, f.message, None),
                });
            }
            if let Some(owner) = ctx.settings.record_owner {
                findings.push(record_owner_finding(&ctx.settings.record_dir, owner));
            }
            if ctx.settings.state == StateBackend::Redis {
                findings.extend(redis_findings(&ctx));
            }
            findings.extend(super::notify::doctor_findings(&ctx));
        }
        Err(f) => findings.push(finding(
            Level::Error,
            format!(
                "{} (the module denies every login until it loads)",
                f.message
            ),
            None,
        )),
    }
    let pam_dir = Path::new(&p.pam_dir);
    findings.extend(pam_services(pam_dir));
    if let Some(text) = dovecot_settings(p.dovecot_config.as_deref()) {
        findings.extend(check_dovecot(&text));
    }
    if let Ok(text) = std::fs::read_to_string(&p.saslauthd_defaults) {
        findings.extend(check_saslauthd(&text));
    }
    report(&findings, p.json)
}

/// The shared state server's findings (`state = "redis"`), in the doctor's levels.
fn redis_findings(ctx: &Context) -> Vec<Finding> {
    probe::probe(&ctx.settings, ctx.euid)
        .into_iter()
        .map(|f| Finding {
            level: match f.level {
                probe::Level::Ok => Level::Ok,
                probe::Level::Info => Level::Info,
                probe::Level::Warn => Level::Warning,
                probe::Level::Fail => Level::Error,
            },
            what: format!("redis: {}", f.what),
            fix: f.fix,
        })
        .collect()
}

fn report(findings: &[Finding], as_json: bool) -> CliResult {
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    if as_json {
        let list: Vec<_> = findings
            .iter()
            .map(|f| json!({"level": f.level.name(), "what": f.what, "fix": f.fix}))
            .collect();
        print_json(&json!({"findings": list, "errors": errors, "warnings": warnings}));
    } else {
        for f in findings {
            println!("{:<8} {}", format!("{}:", f.level.name()), f.what);
            if let Some(fix) = &f.fix {
                println!("         fix: {fix}");
            }
        }
        println!("{errors} error(s), {warnings} warning(s)");
    }
    if errors > 0 {
        return Err(Failure::new(
            Exit::Error,
            format!("doctor found {errors} error(s)"),
        ));
    }
    Ok(())
}

/// Every service file in `dir` that names pam_mailmfa.so, checked.
fn pam_services(dir: &Path) -> Vec<Finding> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![finding(
            Level::Warning,
            format!("{}: cannot be read", dir.display()),
            None,
        )];
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    let mut findings = Vec::new();
    for path in names {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !text.contains("mailmfa") {
            continue;
        }
        let service = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        findings.extend(check_stack(&service, &text));
    }
    if findings.is_empty() {
        findings.push(finding(
            Level::Warning,
            format!("no PAM service in {} uses pam_mailmfa.so", dir.display()),
            Some("install one of the pam.d examples (/usr/share/doc/mailmfa/examples/pam.d/ from the package, pam.d-examples/ in the source; docs/deployment.md)"),
        ));
    }
    findings
}

/// One line of a pam.d file: its type, its control (with `[...]` kept whole) and its module.
struct PamLine<'a> {
    kind: &'a str,
    control: String,
    module: &'a str,
    args: Vec<&'a str>,
}

fn pam_lines(text: &str) -> Vec<PamLine<'_>> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            let (kind, rest) = line.split_once(char::is_whitespace)?;
            let rest = rest.trim_start();
            let (control, rest) = if rest.starts_with('[') {
                let end = rest.find(']')?;
                (
                    rest[..=end]
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                    &rest[end + 1..],
                )
            } else {
                let (c, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (c.to_string(), r)
            };
            let mut words = rest.split_whitespace();
            let module = words.next()?;
            Some(PamLine {
                kind: kind.trim_start_matches('-'),
                control,
                module,
                args: words.collect(),
            })
        })
        .collect()
}

fn is_mailmfa(module: &str) -> bool {
    module
        .rsplit('/')
        .next()
        .is_some_and(|m| m.contains("mailmfa"))
}

/// The `split` line the docs and examples give.
const SPLIT_LINE: &str =
    "auth [success=done ignore=ignore auth_err=bad default=die] pam_mailmfa.so split";

/// Checks one service's stack against design §2: split, then the password module, then
/// verify; controls that stop at a fault and make a refusal cost what a wrong password costs;
/// account lines that refuse the app passwords of deleted and locked mailboxes.
pub fn check_stack(service: &str, text: &str) -> Vec<Finding> {
    let lines = pam_lines(text);
    let auth: Vec<&PamLine> = lines.iter().filter(|l| l.kind == "auth").collect();
    let phase = |name: &str| {
        auth.iter()
            .position(|l| is_mailmfa(l.module) && l.args.contains(&name))
    };
    let mut out = Vec::new();
    let s = |what: &str| format!("{service}: {what}");
    let use_split = format!("use `{SPLIT_LINE}`");
    match (phase("split"), phase("verify")) {
        (None, None) => return out,
        (None, Some(_)) => out.push(finding(
            Level::Error,
            s("`verify` without `split`: every login is denied (no_split)"),
            Some(&format!("add `{SPLIT_LINE}` before the password module")),
        )),
        (Some(_), None) => out.push(finding(
            Level::Error,
            s("`split` without `verify`: codes are taken off the password but never checked"),
            Some("add `auth required pam_mailmfa.so verify` after the password module"),
        )),
        (Some(a), Some(b)) if b < a => out.push(finding(
            Level::Error,
            s("`verify` comes before `split`"),
            Some("order: split, the password module, verify"),
        )),
        (Some(a), Some(b)) if b == a + 1 => out.push(finding(
            Level::Error,
            s("no password module between `split` and `verify`: the password is never checked"),
            Some("put pam_unix/pam_pwdfile/pam_ldap (use_first_pass) between them"),
        )),
        (Some(a), Some(b)) => {
            let split = auth[a];
            let verify = auth[b];
            let ends =
                split.control.contains("success=done") && split.control.contains("default=die");
            out.push(if ends && split.control.contains("auth_err=bad") {
                finding(Level::Ok, s("split, password module, verify in order; app passwords end the stack"), None)
            } else if ends {
                finding(
                    Level::Warning,
                    s("`split` stops the stack at a refusal: a string without a code is refused faster than a wrong password, which tells a stranger which mailboxes have MFA"),
                    Some(&use_split),
                )
            } else if split.control == "requisite" {
                finding(
                    Level::Warning,
                    s("`split` is `requisite`: app passwords are refused"),
                    Some(&use_split),
                )
            } else {
                finding(
                    Level::Warning,
                    s(&format!("`split` has control `{}`: a refusal does not stop the stack", split.control)),
                    Some(&use_split),
                )
            });
            if !(verify.control == "required"
                || verify.control == "requisite"
                || verify.control.contains("default=die"))
            {
                out.push(finding(
                    Level::Error,
                    s(&format!(
                        "`verify` has control `{}`: a wrong code may not deny the login",
                        verify.control
                    )),
                    Some("use `auth required pam_mailmfa.so verify`"),
                ));
            }
            for password in &auth[a + 1..b] {
                if password.control != "requisite" && !password.control.contains("default=die") {
                    out.push(finding(
                        Level::Warning,
                        s(&format!("`{}` is not `requisite`: with a wrong password the code is still checked (and counted)", password.module)),
                        Some("make the password module `requisite`"),
                    ));
                }
            }
            let config = |l: &PamLine| {
                l.args
                    .iter()
                    .find(|a| a.starts_with("config="))
                    .map(|a| a.to_string())
            };
            if config(split) != config(verify) {
                out.push(finding(
                    Level::Warning,
                    s("`split` and `verify` name different config files"),
                    Some("give both lines the same config= (or none)"),
                ));
            }
            if ends {
                out.extend(check_account(service, &lines, &auth[a + 1..b]));
            }
        }
    }
    if !lines.iter().any(|l| l.kind == "account") {
        out.push(finding(
            Level::Error,
            s("no `account` line: Dovecot calls pam_acct_mgmt after every login, which then falls to `other`"),
            Some("add the account lines of pam.d-examples/ (docs/deployment.md)"),
        ));
    }
    out
}

/// An app password ends the `auth` stack in `split`, before the password module: the
/// `account` lines must still refuse a deleted or locked mailbox (docs/deployment.md).
fn check_account(service: &str, lines: &[PamLine], password: &[&PamLine]) -> Vec<Finding> {
    let account: Vec<&PamLine> = lines.iter().filter(|l| l.kind == "account").collect();
    if account.is_empty() {
        return Vec::new(); // reported as an error by the caller
    }
    let module_is = |l: &PamLine, name: &str| l.module.rsplit('/').next() == Some(name);
    fn pwdfile_arg<'a>(l: &PamLine<'a>) -> Option<&'a str> {
        l.args.iter().find_map(|a| a.strip_prefix("pwdfile="))
    }
    let mailmfa_pwdfile = account
        .iter()
        .find(|l| is_mailmfa(l.module) && l.args.contains(&"account"))
        .and_then(|l| pwdfile_arg(l));
    let s = |what: &str| format!("{service}: {what}");
    let mut out = Vec::new();
    for module in password {
        if module_is(module, "pam_pwdfile.so") {
            let file = pwdfile_arg(module).unwrap_or("PATH");
            if mailmfa_pwdfile != Some(file) {
                out.push(finding(
                    Level::Warning,
                    s("app passwords skip pam_pwdfile and no account line reads its password file: a deleted or locked mailbox's app passwords keep working"),
                    Some(&format!("add `account required pam_mailmfa.so account pwdfile={file}`")),
                ));
            }
        } else if module_is(module, "pam_unix.so") {
            if !account.iter().any(|l| module_is(l, "pam_unix.so")) {
                out.push(finding(
                    Level::Warning,
                    s("app passwords skip pam_unix and no `account ... pam_unix.so` line: a deleted or expired account's app passwords keep working"),
                    Some("add `account required pam_unix.so`"),
                ));
            }
            if mailmfa_pwdfile != Some("/etc/shadow") {
                out.push(finding(
                    Level::Warning,
                    s("nothing refuses the app passwords of a locked account (`usermod -L`)"),
                    Some("add `account required pam_mailmfa.so account pwdfile=/etc/shadow`"),
                ));
            }
        } else if account.iter().all(|l| module_is(l, "pam_permit.so")) {
            out.push(finding(
                Level::Warning,
                s(&format!("the only account check is pam_permit: app passwords skip `{}`, so a deleted mailbox's app passwords keep working", module.module)),
                Some("use the password module's own account check (e.g. `account required pam_ldap.so`)"),
            ));
        }
    }
    out
}

/// `doveconf -n` (of `config`, or of the machine's Dovecot), if Dovecot is installed.
fn dovecot_settings(config: Option<&str>) -> Option<String> {
    let mut cmd = Command::new("doveconf");
    if let Some(file) = config {
        cmd.args(["-c", file]);
    }
    let out = cmd.arg("-n").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Dovecot's auth cache in front of a PAM passdb (`doveconf -n` output).
pub fn check_dovecot(doveconf: &str) -> Vec<Finding> {
    let size = doveconf
        .lines()
        .find_map(|l| l.trim().strip_prefix("auth_cache_size = "))
        .map(|v| v.trim().to_string());
    let cached = size.as_deref().is_some_and(|v| !v.starts_with('0'));
    if cached && doveconf.contains("cache_key") {
        let fix = "set auth_cache_size = 0, or remove cache_key from the PAM passdb's args (docs/deployment.md)";
        let what = if doveconf.contains("%r") || doveconf.contains("%{rip}") {
            "Dovecot's auth cache answers a repeated password+code from the same address without PAM, past the code's validity"
        } else {
            "Dovecot's auth cache answers a repeated password+code from ANY address without PAM"
        };
        vec![finding(Level::Warning, what, Some(fix))]
    } else {
        vec![finding(
            Level::Ok,
            "Dovecot's auth cache does not answer for the PAM passdb",
            None,
        )]
    }
}

/// saslauthd's options (`/etc/default/saslauthd`).
pub fn check_saslauthd(defaults: &str) -> Vec<Finding> {
    let options = defaults
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("OPTIONS="))
        .unwrap_or("")
        .trim_matches('"');
    let words: Vec<&str> = options.split_whitespace().collect();
    let mut out = Vec::new();
    if words.contains(&"-c") {
        out.push(finding(
            Level::Warning,
            "saslauthd runs with -c: its credential cache answers a repeated password+code without PAM",
            Some("remove -c from OPTIONS in /etc/default/saslauthd"),
        ));
    }
    if !words.contains(&"-r") {
        out.push(finding(
            Level::Warning,
            "saslauthd runs without -r: PAM sees `alice` for `alice@example.com`, another mailbox",
            Some("add -r to OPTIONS in /etc/default/saslauthd"),
        ));
    }
    if out.is_empty() {
        out.push(finding(
            Level::Ok,
            "saslauthd: no credential cache, full login names",
            None,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_dir_belongs_to_the_record_owner_with_mode_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let me = mailmfa::pam::sys::effective_uid();
        let set = |mode| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(0o700);
        assert_eq!(record_owner_finding(dir.path(), me).level, Level::Ok);
        set(0o750);
        let bad = record_owner_finding(dir.path(), me);
        assert_eq!(bad.level, Level::Error);
        assert!(bad.fix.unwrap().contains("chmod 0700"));
        set(0o700);
        let other = record_owner_finding(dir.path(), me + 1);
        assert_eq!(other.level, Level::Error, "a directory of someone else");
        std::fs::write(dir.path().join("alice.toml"), "").unwrap();
        assert_eq!(record_owner_finding(dir.path(), me).level, Level::Ok);
        if me == 0 {
            // A record root left behind, in a directory that is the record owner's.
            std::os::unix::fs::chown(dir.path(), Some(65534), None).unwrap();
            let foreign = record_owner_finding(dir.path(), 65534);
            assert_eq!(foreign.level, Level::Error);
            assert!(foreign.what.contains("1 record"), "{}", foreign.what);
        }
    }

    const GOOD: &str =
        "auth [success=done ignore=ignore auth_err=bad default=die] pam_mailmfa.so split\n\
                        auth requisite pam_pwdfile.so pwdfile=/etc/dovecot/passwd.pam\n\
                        auth required pam_mailmfa.so verify\n\
                        account required pam_mailmfa.so account pwdfile=/etc/dovecot/passwd.pam\n";

    fn levels(text: &str) -> Vec<Level> {
        check_stack("svc", text).iter().map(|f| f.level).collect()
    }

    #[test]
    fn the_shipped_examples_are_healthy() {
        for name in ["dovecot", "dovecot-virtual", "smtp"] {
            let path = format!("{}/pam.d-examples/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap();
            assert_eq!(levels(&text), vec![Level::Ok], "{name}");
        }
        assert_eq!(levels(GOOD), vec![Level::Ok]);
    }

    #[test]
    fn broken_stacks_are_errors() {
        let no_verify = GOOD.replace("auth required pam_mailmfa.so verify\n", "");
        assert!(levels(&no_verify).contains(&Level::Error));
        let no_split = GOOD.replace(&format!("{SPLIT_LINE}\n"), "");
        assert!(levels(&no_split).contains(&Level::Error));
        let no_password = GOOD.replace(
            "auth requisite pam_pwdfile.so pwdfile=/etc/dovecot/passwd.pam\n",
            "",
        );
        assert!(levels(&no_password).contains(&Level::Error));
        let optional_verify = GOOD.replace(
            "auth required pam_mailmfa.so verify",
            "auth optional pam_mailmfa.so verify",
        );
        assert!(levels(&optional_verify).contains(&Level::Error));
        let no_account = GOOD.replace(
            "account required pam_mailmfa.so account pwdfile=/etc/dovecot/passwd.pam\n",
            "",
        );
        assert!(levels(&no_account).contains(&Level::Error));
        let requisite = GOOD.replace(
            "[success=done ignore=ignore auth_err=bad default=die]",
            "requisite",
        );
        assert_eq!(levels(&requisite), vec![Level::Warning]);
    }

    #[test]
    fn a_split_that_refuses_early_is_warned_about() {
        let early = GOOD.replace(" auth_err=bad", "");
        let findings = check_stack("svc", &early);
        assert_eq!(findings[0].level, Level::Warning);
        assert!(findings[0].what.contains("which mailboxes have MFA"));
        assert!(findings[0].fix.as_deref().unwrap().contains("auth_err=bad"));
    }

    #[test]
    fn stacks_that_let_app_passwords_outlive_the_mailbox_are_warned_about() {
        let permit = GOOD.replace(
            "account required pam_mailmfa.so account pwdfile=/etc/dovecot/passwd.pam",
            "account required pam_permit.so",
        );
        assert_eq!(levels(&permit), vec![Level::Ok, Level::Warning]);
        let other_file = GOOD.replace("account pwdfile=/etc/dovecot/", "account pwdfile=/srv/");
        assert_eq!(levels(&other_file), vec![Level::Ok, Level::Warning]);
        let unix =
            "auth [success=done ignore=ignore auth_err=bad default=die] pam_mailmfa.so split\n\
                    auth requisite pam_unix.so use_first_pass\n\
                    auth required pam_mailmfa.so verify\n\
                    account required pam_permit.so\n";
        assert_eq!(
            levels(unix),
            vec![Level::Ok, Level::Warning, Level::Warning]
        );
        let ldap = unix.replace("pam_unix.so use_first_pass", "pam_ldap.so use_first_pass");
        assert_eq!(levels(&ldap), vec![Level::Ok, Level::Warning]);
        let ldap_account = ldap.replace(
            "account required pam_permit.so",
            "account required pam_ldap.so",
        );
        assert_eq!(levels(&ldap_account), vec![Level::Ok]);
    }

    #[test]
    fn caches_in_front_of_pam_are_warned_about() {
        let cached =
            "auth_cache_size = 10 M\npassdb {\n  args = cache_key=%u dovecot\n  driver = pam\n}\n";
        assert_eq!(check_dovecot(cached)[0].level, Level::Warning);
        assert!(check_dovecot(cached)[0].what.contains("ANY address"));
        assert_eq!(
            check_dovecot("passdb {\n  driver = pam\n}\n")[0].level,
            Level::Ok
        );
        assert_eq!(
            check_dovecot("auth_cache_size = 10 M\npassdb {\n  driver = pam\n}\n")[0].level,
            Level::Ok
        );
        let sasl = check_saslauthd("START=yes\nOPTIONS=\"-c -m /var/run/saslauthd\"\n");
        assert_eq!(sasl.len(), 2);
        assert_eq!(
            check_saslauthd("OPTIONS=\"-r -m /x\"\n")[0].level,
            Level::Ok
        );
    }
}
