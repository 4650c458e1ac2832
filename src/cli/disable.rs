//! `mailmfa disable LOGIN`: turn MFA off. Needs a current code, checked like a login code
//! (replay rules and throttle, as client `mailmfa-disable`), or an unused recovery code (which
//! it uses up), or `--force` for admins. Removes the record, with its app passwords and
//! recovery codes, the state and any pending enrolment.

use super::args::{Parsed, Spec};
use super::audit::Event;
use super::code;
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::prompt;
use super::{parse_login, Context};
use mailmfa::auth::CodeKind;
use mailmfa::credential;
use mailmfa::login::Login;
use mailmfa::store::{Store, StoreError};
use serde_json::json;

/// What `disable` accepts.
pub const SPEC: Spec = Spec {
    command: "disable",
    flags: &["force", "json"],
    values: &["code"],
    positionals: &["LOGIN"],
};

/// The client name the code is checked as.
pub const DISABLE_CLIENT: &str = "mailmfa-disable";

/// Runs `disable`.
pub fn run(ctx: &Context, p: &Parsed) -> CliResult {
    let login = parse_login(&p.positionals[0])?;
    let force = p.flag("force");
    if force && p.value("code").is_some() {
        return Err(Failure::usage("disable: give --code or --force, not both"));
    }
    ctx.check_dirs()?;
    let store = ctx.store();
    let pending_store = ctx.pending();
    let record = match store.read_record(&login) {
        Ok(record) => record,
        Err(e @ StoreError::BadRecord { .. }) if !force => {
            return Err(Failure::new(
                Exit::Error,
                format!("{e}: no code can be checked against a damaged record; an admin can remove it with --force"),
            ))
        }
        Err(StoreError::BadRecord { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let damaged = record.is_none() && store.record_path(&login).exists();
    if record.is_none() && !damaged {
        if pending_store.remove(&login)? {
            audit(&login, force, "ok", Some("pending_only"));
            return done(
                &login,
                p.flag("json"),
                "MFA was not on; the pending enrolment was removed",
            );
        }
        return Err(Failure::new(
            Exit::Conflict,
            format!("MFA is not on for {login}: nothing to do"),
        ));
    }
    if let Some(record) = &record {
        if !force {
            let typed = match p.value("code") {
                Some(typed) => zeroize::Zeroizing::new(typed.to_string()),
                None => prompt::line(&format!("Current code of {login} (or a recovery code): "))?
                    .ok_or_else(|| {
                    Failure::new(
                        Exit::CodeRefused,
                        format!("no code given: MFA stays on for {login}"),
                    )
                })?,
            };
            let typed = typed.trim();
            let result = if credential::is_recovery_code(typed.as_bytes()) {
                code::check_current(
                    ctx,
                    &store,
                    &login,
                    record,
                    (typed.as_bytes(), CodeKind::Recovery),
                    DISABLE_CLIENT,
                )
            } else {
                code::normalise(typed, record.digits)
                    .map_err(|mut f| {
                        f.message.push_str(" (or a recovery code: abcd-efgh-ijkl)");
                        f
                    })
                    .and_then(|c| {
                        code::check_current(
                            ctx,
                            &store,
                            &login,
                            record,
                            (&c, CodeKind::Totp),
                            DISABLE_CLIENT,
                        )
                    })
            };
            if let Err(failure) = result {
                audit(&login, false, "refused", Some("code_refused"));
                return Err(failure);
            }
        }
    }
    store.remove_user(&login)?;
    pending_store.remove(&login)?;
    audit(&login, force, "ok", None);
    done(
        &login,
        p.flag("json"),
        "MFA is off: the password alone logs in again",
    )
}

fn done(login: &Login, json: bool, text: &str) -> CliResult {
    if json {
        print_json(&json!({ "login": login.as_str(), "mfa": "off" }));
    } else {
        println!("{login}: {text}");
    }
    Ok(())
}

fn audit(login: &Login, force: bool, result: &str, reason: Option<&str>) {
    Event {
        action: "disable",
        login,
        name: None,
        replace: false,
        force,
        result,
        reason,
    }
    .send();
}
