//! `mailmfa doctor`: checks the whole set-up and says what to fix — the config file, the
//! record and state directories, every PAM service that uses pam_mailmfa.so (phases, order,
//! controls, the account line), Dovecot's auth cache and saslauthd's options (both caches
//! answer a repeated password+code without asking PAM, design §5), and with `state = "redis"`
//! the shared state server (connection, ACL, eviction, persistence:
//! [`mailmfa::store::redis::probe`]), and with `[notify]` on the notifier's spool and MTA
//! (`super::notify::doctor_findings`).
//!
//! Each check is a pure function of the text it reads, so the rules are unit-tested and the
//! command only gathers the texts. This file: the findings, the run and the report, the
//! directories; [`pam_stack`]: the pam.d stacks; [`caches`]: Dovecot's auth cache and
//! saslauthd's.

mod caches;
mod pam_stack;

use caches::{check_dovecot, check_saslauthd};

use super::command::Doctor;
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::Context;
use caches::dovecot_settings;
use mailmfa::config::StateBackend;
use mailmfa::store::redis::probe;
use pam_stack::pam_services;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
            findings.extend(super::db::doctor_findings(&ctx));
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
}
