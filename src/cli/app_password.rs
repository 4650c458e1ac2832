//! `mailmfa app-password add|list|revoke`: per-device passwords for mail clients that store
//! the password and reconnect all day.
//!
//! What they are and the rules are in `mailmfa::account::app_password`; here are the options,
//! and the password printed once.

use super::command::{AppPasswordAdd, AppPasswordList, AppPasswordRevoke};
use super::exit::{CliResult, Failure};
use super::output::{print_json, utc, utc_or_dash};
use super::{parse_login, Context};
use mailmfa::account::app_password::NAME_RULE;
use mailmfa::account::{self as acct, AppPasswordInfo};
use mailmfa::config::parse_duration;
use serde_json::{json, Value};

/// Runs `app-password add LOGIN --label NAME [--services S,S] [--expires DURATION]`.
pub fn add(ctx: &Context, p: &AppPasswordAdd) -> CliResult {
    let login = parse_login(&p.login)?;
    let name = p.label.as_str();
    check_name("app-password add: --label", name)?;
    let services = match p.services.as_deref() {
        Some(list) => acct::parse_services(list)
            .map_err(|e| Failure::usage(format!("app-password add: --{e}")))?,
        None => Vec::new(),
    };
    let expires = match p.expires.as_deref() {
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
    let app = acct::add_app_password(&ctx.acct(), &login, name, &services, expires)
        .map_err(ctx.failure(&login))?;
    if p.json {
        let mut out = entry_json(&AppPasswordInfo {
            name: app.name.clone(),
            services: app.services.clone(),
            created: app.created,
            expires: app.expires,
            last_used: None,
            last_client: None,
            from: Vec::new(),
        });
        out["login"] = json!(login.as_str());
        out["password"] = json!(app.password.as_str());
        print_json(&out);
        return Ok(());
    }
    println!(
        "App password `{}` for {login} (shown once: only its hash is kept):\n\n    {}\n",
        app.name,
        app.password.as_str()
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
pub fn list(ctx: &Context, p: &AppPasswordList) -> CliResult {
    let login = parse_login(&p.login)?;
    ctx.check_dirs()?;
    let apps = acct::list_app_passwords(&ctx.acct(), &login).map_err(ctx.failure(&login))?;
    if p.json {
        let items: Vec<Value> = apps
            .iter()
            .map(|app| {
                let mut item = entry_json(app);
                item["expired"] = json!(app.expires.is_some_and(|e| ctx.now >= e));
                item
            })
            .collect();
        print_json(&json!({ "login": login.as_str(), "app_passwords": items }));
        return Ok(());
    }
    if apps.is_empty() {
        println!("{login} has no app passwords (add one with `mailmfa app-password add {login} --label NAME`)");
        return Ok(());
    }
    println!(
        "{:<24} {:<20} {:<21} {:<31} {:<21} FROM",
        "NAME", "SERVICES", "CREATED", "EXPIRES", "LAST USED"
    );
    for app in &apps {
        let expires = match app.expires {
            Some(e) if ctx.now >= e => format!("{} (expired)", utc(e)),
            Some(e) => utc(e),
            None => "never".to_string(),
        };
        println!(
            "{:<24} {:<20} {:<21} {:<31} {:<21} {}",
            app.name,
            services_text(&app.services),
            utc(app.created),
            expires,
            utc_or_dash(app.last_used),
            app.last_client
                .as_deref()
                .filter(|c| !c.is_empty())
                .unwrap_or("-"),
        );
    }
    Ok(())
}

/// Runs `app-password revoke LOGIN NAME`.
pub fn revoke(ctx: &Context, p: &AppPasswordRevoke) -> CliResult {
    let login = parse_login(&p.login)?;
    let name = p.name.as_str();
    check_name("app-password revoke: NAME", name)?;
    ctx.check_dirs()?;
    acct::revoke_app_password(&ctx.acct(), &login, name).map_err(ctx.failure(&login))?;
    if p.json {
        print_json(&json!({ "login": login.as_str(), "name": name, "revoked": true }));
    } else {
        println!("{login}: app password `{name}` revoked: it stops working at once");
    }
    Ok(())
}

/// The library's name rule, said about the option or argument `what`.
fn check_name(what: &str, name: &str) -> Result<(), Failure> {
    acct::app_password::check_name(name).map_err(|_| {
        Failure::usage(format!(
            "{what} is {NAME_RULE}, not `{}`",
            mailmfa::login::printable(name.as_bytes())
        ))
    })
}

fn services_text(services: &[String]) -> String {
    if services.is_empty() {
        "all".to_string()
    } else {
        services.join(",")
    }
}

/// An app password as JSON, never its hash.
fn entry_json(app: &AppPasswordInfo) -> Value {
    json!({
        "name": app.name,
        "services": app.services,
        "created": app.created,
        "expires": app.expires,
        "last_used": app.last_used,
        "last_client": app.last_client,
        "from": app.from,
    })
}
