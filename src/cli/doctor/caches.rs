//! The doctor's checks of the caches in front of PAM that answer a repeated password+code
//! without asking the module (design §5): Dovecot's auth cache and saslauthd's `-c`.

use super::{finding, Finding, Level};
use std::process::Command;

/// `doveconf -n` (of `config`, or of the machine's Dovecot), if Dovecot is installed.
pub(super) fn dovecot_settings(config: Option<&str>) -> Option<String> {
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
