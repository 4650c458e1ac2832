//! `mailmfa app-password add|list|revoke`: per-device passwords for mail clients that store
//! the password and reconnect all day.
//!
//! An app password is 20 generated letters (`abcde-fghij-klmno-pqrst`, 94 bits), shown once
//! and kept in the record only as a salted hash (see `mailmfa::credential` for why a fast
//! hash). The module accepts it alone, in `split`, for its PAM services and until it expires;
//! its last use is in the state, which `list` shows. Turning MFA off removes them all.

use super::args::{Parsed, Spec};
use super::exit::{CliResult, Exit, Failure};
use super::output::{print_json, utc, utc_or_dash};
use super::{audit_ok, change_record, mfa_not_on, parse_login, Context};
use mailmfa::config::parse_duration;
use mailmfa::credential::{self, APP_PASSWORD_LETTERS};
use mailmfa::record::{is_valid_app_password_name, AppPassword};
use mailmfa::state::State;
use mailmfa::store::Store;
use serde_json::{json, Value};

/// What `app-password add` accepts.
pub const ADD_SPEC: Spec = Spec {
    command: "app-password add",
    flags: &["json"],
    values: &["label", "services", "expires"],
    positionals: &["LOGIN"],
};

/// What `app-password list` accepts.
pub const LIST_SPEC: Spec = Spec {
    command: "app-password list",
    flags: &["json"],
    values: &[],
    positionals: &["LOGIN"],
};

/// What `app-password revoke` accepts.
pub const REVOKE_SPEC: Spec = Spec {
    command: "app-password revoke",
    flags: &["json"],
    values: &[],
    positionals: &["LOGIN", "NAME"],
};

/// A subcommand's runner, as `main` calls it.
pub type Runner = fn(&Context, &Parsed) -> CliResult;

/// The action named on the command line, ready to run.
pub struct Action<'a> {
    /// The arguments after the action's name.
    pub args: &'a [String],
    /// What the action accepts.
    pub spec: &'static Spec,
    /// Runs it.
    pub run: Runner,
}

/// Picks the action named first in `rest` (`add`, `list`, `revoke`). `Ok(None)` for `--help`
/// (or `-h`) in place of an action.
pub fn action(rest: &[String]) -> Result<Option<Action<'_>>, Failure> {
    let Some(first) = rest.first() else {
        return Err(Failure::usage(
            "app-password: name an action: add, list or revoke (see mailmfa app-password --help)",
        ));
    };
    let (spec, run): (&'static Spec, Runner) = match first.as_str() {
        "-h" | "--help" => return Ok(None),
        "add" => (&ADD_SPEC, add),
        "list" => (&LIST_SPEC, list),
        "revoke" => (&REVOKE_SPEC, revoke),
        other => {
            return Err(Failure::usage(format!(
                "app-password: no action `{other}`: add, list or revoke"
            )))
        }
    };
    Ok(Some(Action {
        args: &rest[1..],
        spec,
        run,
    }))
}

/// Runs `app-password add LOGIN --label NAME [--services S,S] [--expires DURATION]`.
pub fn add(ctx: &Context, p: &Parsed) -> CliResult {
    let login = parse_login(&p.positionals[0])?;
    let name = p.value("label").ok_or_else(|| {
        Failure::usage(
            "app-password add: --label NAME is required (the device, e.g. thunderbird-laptop)",
        )
    })?;
    check_name("app-password add: --label", name)?;
    let services = match p.value("services") {
        Some(list) => parse_services(list)?,
        None => Vec::new(),
    };
    let expires = match p.value("expires") {
        Some(text) => Some(
            parse_duration(text)
                .filter(|d| *d > 0)
                .and_then(|d| ctx.now.checked_add(d))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "app-password add: --expires is a duration such as 90d, 12h or 3600, \
                         not `{text}`"
                    ))
                })?,
        ),
        None => None,
    };
    ctx.check_dirs()?;
    let password = credential::random_letters(APP_PASSWORD_LETTERS, 5)
        .map_err(|e| Failure::new(Exit::Error, format!("the OS random source failed: {e}")))?;
    let salt = credential::random_salt()
        .map_err(|e| Failure::new(Exit::Error, format!("the OS random source failed: {e}")))?;
    // The module hashes the letters alone (dashes are optional when typed).
    let letters = credential::app_password_letters(password.as_bytes())
        .ok_or_else(|| Failure::new(Exit::Error, "a generated app password has a wrong shape"))?;
    let app = AppPassword {
        name: name.to_string(),
        hash: credential::hash(&letters, &salt),
        services,
        created: ctx.now,
        expires,
    };
    change_record(ctx, &login, &mut |record, state| {
        if record.app_passwords.iter().any(|a| a.name == app.name) {
            return Err(Failure::new(
                Exit::Conflict,
                format!(
                    "{login} already has an app password named `{}`: choose another --label, or \
                     revoke it first (mailmfa app-password revoke {login} {})",
                    app.name, app.name
                ),
            ));
        }
        record.app_passwords.push(app.clone());
        forget_use(state, &app.name);
        Ok(())
    })?;
    audit_ok("app-password-add", &login, Some(&app.name));
    if p.flag("json") {
        let mut out = entry_json(&app, None);
        out["login"] = json!(login.as_str());
        out["password"] = json!(password.as_str());
        print_json(&out);
        return Ok(());
    }
    println!(
        "App password `{}` for {login} (shown once: only its hash is kept):\n\n    {}\n",
        app.name,
        password.as_str()
    );
    println!("services: {}", services_text(&app.services));
    println!(
        "expires:  {}",
        app.expires.map_or_else(|| "never".to_string(), utc)
    );
    println!(
        "\nType it in the mail client as the password, alone: no mailbox password and no code \
         (the dashes are optional)."
    );
    Ok(())
}

/// Runs `app-password list LOGIN`.
pub fn list(ctx: &Context, p: &Parsed) -> CliResult {
    let login = parse_login(&p.positionals[0])?;
    ctx.check_dirs()?;
    let store = ctx.store();
    let record = store
        .read_record(&login)?
        .ok_or_else(|| mfa_not_on(&login))?;
    let state = store.read_state(&login)?.unwrap_or_default();
    let last_use = |name: &str| state.app_password_uses.iter().find(|u| u.name == name);
    if p.flag("json") {
        let items: Vec<Value> = record
            .app_passwords
            .iter()
            .map(|app| {
                let mut item = entry_json(app, last_use(&app.name).map(|u| (u.at, &u.client)));
                item["expired"] = json!(app.expires.is_some_and(|e| ctx.now >= e));
                item
            })
            .collect();
        print_json(&json!({ "login": login.as_str(), "app_passwords": items }));
        return Ok(());
    }
    if record.app_passwords.is_empty() {
        println!("{login} has no app passwords (add one with `mailmfa app-password add {login} --label NAME`)");
        return Ok(());
    }
    println!(
        "{:<24} {:<20} {:<21} {:<31} {:<21} FROM",
        "NAME", "SERVICES", "CREATED", "EXPIRES", "LAST USED"
    );
    for app in &record.app_passwords {
        let expires = match app.expires {
            Some(e) if ctx.now >= e => format!("{} (expired)", utc(e)),
            Some(e) => utc(e),
            None => "never".to_string(),
        };
        let used = last_use(&app.name);
        println!(
            "{:<24} {:<20} {:<21} {:<31} {:<21} {}",
            app.name,
            services_text(&app.services),
            utc(app.created),
            expires,
            utc_or_dash(used.map(|u| u.at)),
            used.map(|u| u.client.as_str())
                .filter(|c| !c.is_empty())
                .unwrap_or("-"),
        );
    }
    Ok(())
}

/// Runs `app-password revoke LOGIN NAME`.
pub fn revoke(ctx: &Context, p: &Parsed) -> CliResult {
    let login = parse_login(&p.positionals[0])?;
    let name = p.positionals[1].as_str();
    check_name("app-password revoke: NAME", name)?;
    ctx.check_dirs()?;
    change_record(ctx, &login, &mut |record, state| {
        let before = record.app_passwords.len();
        record.app_passwords.retain(|a| a.name != name);
        if record.app_passwords.len() == before {
            return Err(Failure::new(
                Exit::Conflict,
                format!(
                    "{login} has no app password named `{name}` (see mailmfa app-password list {login})"
                ),
            ));
        }
        forget_use(state, name);
        Ok(())
    })?;
    audit_ok("app-password-revoke", &login, Some(name));
    if p.flag("json") {
        print_json(&json!({ "login": login.as_str(), "name": name, "revoked": true }));
    } else {
        println!("{login}: app password `{name}` revoked: it stops working at once");
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), Failure> {
    if is_valid_app_password_name(name) {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{what} is 1 to 64 letters, digits, `.`, `_` or `-` (e.g. thunderbird-laptop), not `{}`",
        mailmfa::login::printable(name.as_bytes())
    )))
}

/// `imap,smtp` → the PAM service names, without repeats. A PAM service is the name of the
/// pam.d file the server uses (Dovecot: `dovecot` by default, or `imap`/`pop3` with
/// `args = %s`; Postfix through saslauthd: `smtp`).
fn parse_services(list: &str) -> Result<Vec<String>, Failure> {
    let mut services: Vec<String> = Vec::new();
    for service in list.split(',').map(str::trim) {
        let valid = !service.is_empty()
            && service.len() <= 64
            && service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(Failure::usage(format!(
                "app-password add: --services is a comma-separated list of PAM service names \
                 (the pam.d file names, e.g. dovecot,smtp), not `{}`; leave it out for all services",
                mailmfa::login::printable(list.as_bytes())
            )));
        }
        if !services.iter().any(|s| s == service) {
            services.push(service.to_string());
        }
    }
    Ok(services)
}

fn services_text(services: &[String]) -> String {
    if services.is_empty() {
        "all".to_string()
    } else {
        services.join(",")
    }
}

/// An app password as JSON, never its hash; `used` is its last use (time, client).
fn entry_json(app: &AppPassword, used: Option<(u64, &String)>) -> Value {
    json!({
        "name": app.name,
        "services": app.services,
        "created": app.created,
        "expires": app.expires,
        "last_used": used.map(|u| u.0),
        "last_client": used.map(|u| u.1),
    })
}

/// Drops the last use recorded under `name`: a new or revoked app password has none.
fn forget_use(state: &mut State, name: &str) {
    state.app_password_uses.retain(|u| u.name != name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_pam_service_names_without_repeats() {
        assert_eq!(parse_services("imap, smtp,imap").unwrap(), ["imap", "smtp"]);
        for bad in ["", "imap,", "../x", "im ap", "a/b"] {
            assert!(parse_services(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_are_add_list_revoke() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert!(action(&args("add alice --label x")).unwrap().is_some());
        assert!(action(&args("--help")).unwrap().is_none());
        assert!(action(&args("remove alice x")).is_err());
        assert!(action(&[]).is_err());
    }
}
