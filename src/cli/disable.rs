//! `mailmfa disable LOGIN`: turn MFA off with a current code (checked as client
//! `mailmfa-disable`), a recovery code, or `--force` for admins. The rules are in
//! `mailmfa::account::disable`; here are the options, the prompt and the output.

use super::command::Disable;
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::prompt;
use super::{parse_login, Context};
use mailmfa::account::{self as acct, AccountError, Disabled, Proof};
use mailmfa::login::Login;
use mailmfa::store::{Store, StoreError};
use serde_json::json;
use zeroize::Zeroizing;

/// The client name the code is checked as.
pub const DISABLE_CLIENT: &str = "mailmfa-disable";

/// Runs `disable`.
pub fn run(ctx: &Context, p: &Disable) -> CliResult {
    let login = parse_login(&p.login)?;
    let force = p.force;
    if force && p.code.is_some() {
        return Err(Failure::usage("disable: give --code or --force, not both"));
    }
    ctx.check_dirs()?;
    // Ask for a code only when there is an active record to check it against.
    let typed = match p.code.as_deref() {
        Some(typed) => Zeroizing::new(typed.to_string()),
        None if !force && matches!(ctx.store().read_record(&login), Ok(Some(_))) => prompt::line(
            &format!("Current code of {login} (or a recovery code): "),
        )?
        .ok_or_else(|| {
            Failure::new(
                Exit::CodeRefused,
                format!("no code given: MFA stays on for {login}"),
            )
        })?,
        None => Zeroizing::new(String::new()),
    };
    let proof = if force {
        Proof::Force
    } else {
        Proof::Code(&typed)
    };
    let disabled = acct::disable(&ctx.acct(), &login, proof, DISABLE_CLIENT).map_err(|e| match e {
        AccountError::NotOn => Failure::new(
            Exit::Conflict,
            format!("MFA is not on for {login}: nothing to do"),
        ),
        AccountError::Store(e @ StoreError::BadRecord { .. }) => Failure::new(
            Exit::Error,
            format!("{e}: no code can be checked against a damaged record; an admin can remove it with --force"),
        ),
        e @ AccountError::BadCodeFormat { .. } => Failure::new(
            Exit::CodeRefused,
            format!("{e} (or a recovery code: abcd-efgh-ijkl)"),
        ),
        e => ctx.failure(&login)(e),
    })?;
    let text = match disabled {
        Disabled::Off => "MFA is off: the password alone logs in again",
        Disabled::PendingOnly => "MFA was not on; the pending enrolment was removed",
    };
    done(&login, p.json, text)
}

fn done(login: &Login, json: bool, text: &str) -> CliResult {
    if json {
        print_json(&json!({ "login": login.as_str(), "mfa": "off" }));
    } else {
        println!("{login}: {text}");
    }
    Ok(())
}
