//! The doctor's checks of the pam.d stacks that name pam_mailmfa.so: the phases, their order
//! and controls, the password module between them, and the account line.

use super::{finding, Finding, Level};
use std::path::Path;

/// Every service file in `dir` that names pam_mailmfa.so, checked.
pub(super) fn pam_services(dir: &Path) -> Vec<Finding> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
