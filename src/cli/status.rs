//! `mailmfa status LOGIN` and `mailmfa list`: on, off or pending; since when; the last
//! successful code and its client; whether the throttle refuses codes now. Never a secret:
//! only the record's parameters are shown, never its key. With `state = "redis"`, `status`
//! also says where the state lives (the URL, which never holds a password, and the key) and
//! how long the key still lives (`TTL`).

use super::command::{List, Status};
use super::exit::{CliResult, Exit, Failure};
use super::output::{print_json, utc, utc_or_dash};
use super::{parse_login, Context};
use mailmfa::account::code::{recent_failures, throttled};
use mailmfa::account::status::recovery_left;
use mailmfa::config::StateBackend;
use mailmfa::login::Login;
use mailmfa::store::pending::PendingStore;
use mailmfa::store::redis::probe::{self, KeyTtl};
use mailmfa::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// What is known about one login, without its secret.
struct Info {
    login: Login,
    /// `on`, `pending` or `off`.
    mfa: &'static str,
    created: Option<u64>,
    label: Option<String>,
    params: Option<(String, u32, u64)>,
    last_success: Option<u64>,
    last_client: Option<String>,
    throttled: bool,
    recent_failures: usize,
    /// Number of app passwords in the record.
    app_passwords: usize,
    /// Recovery codes of the record not used yet.
    recovery_codes_left: usize,
    /// (expires_at, expired, replace)
    pending: Option<(u64, bool, bool)>,
}

impl Info {
    fn json(&self) -> Value {
        json!({
            "login": self.login.as_str(),
            "mfa": self.mfa,
            "created": self.created,
            "label": self.label,
            "algorithm": self.params.as_ref().map(|p| p.0.clone()),
            "digits": self.params.as_ref().map(|p| p.1),
            "period": self.params.as_ref().map(|p| p.2),
            "last_success": self.last_success,
            "last_client": self.last_client,
            "throttled": self.throttled,
            "recent_failures": self.recent_failures,
            "app_passwords": self.app_passwords,
            "recovery_codes_left": self.recovery_codes_left,
            "pending": self.pending.map(|(expires_at, expired, replace)| json!({
                "expires_at": expires_at, "expired": expired, "replace": replace,
            })),
        })
    }
}

fn describe(
    ctx: &Context,
    store: &dyn Store,
    pending_store: &PendingStore,
    login: &Login,
) -> Result<Info, Failure> {
    let record = store.read_record(login)?;
    let state = store.read_state(login)?.unwrap_or_default();
    let pending = pending_store
        .read(login)?
        .map(|p| (p.expires_at, p.expired(ctx.now), p.replace));
    let mfa = match (&record, pending) {
        (Some(_), _) => "on",
        (None, Some((_, false, _))) => "pending",
        (None, _) => "off",
    };
    Ok(Info {
        login: login.clone(),
        mfa,
        created: record.as_ref().map(|r| r.created),
        label: record.as_ref().and_then(|r| r.label.clone()),
        params: record
            .as_ref()
            .map(|r| (r.algorithm.name().to_string(), r.digits, r.period)),
        last_success: state.last_success,
        last_client: state.last_client.clone(),
        throttled: throttled(&ctx.settings, ctx.now, &state),
        recent_failures: recent_failures(&ctx.settings, ctx.now, &state),
        app_passwords: record.as_ref().map_or(0, |r| r.app_passwords.len()),
        recovery_codes_left: record.as_ref().map_or(0, |r| recovery_left(r, &state)),
        pending,
    })
}

/// Where a login's shared state lives (`state = "redis"`) and how long its key lives.
struct Shared {
    url: String,
    key: String,
    ttl: KeyTtl,
}

impl Shared {
    /// Reads the key's `TTL`; a server that cannot be used is a failure that says so.
    fn read(ctx: &Context, login: &Login) -> Result<Shared, Failure> {
        let url = ctx.settings.redis.url.clone();
        let (key, ttl) = probe::key_ttl(&ctx.settings, ctx.euid, login).map_err(|why| {
            Failure::new(
                Exit::Error,
                format!(
                    "the shared state server {url} cannot be used: {why}. While it fails, \
                     every login with MFA is refused (state_unavailable); `mailmfa doctor` \
                     checks the connection"
                ),
            )
        })?;
        Ok(Shared { url, key, ttl })
    }

    /// The key's lifetime in words.
    fn ttl_text(&self) -> String {
        match &self.ttl {
            KeyTtl::Seconds(s) => format!("{s} s left"),
            KeyTtl::Kept => "kept (recovery codes used)".to_string(),
            KeyTtl::Missing => "no key (nothing remembered)".to_string(),
            KeyTtl::Refused(e) => format!("unknown (TTL refused: {e})"),
        }
    }

    fn json(&self) -> Value {
        let (ttl, expiry) = match &self.ttl {
            KeyTtl::Seconds(s) => (Some(*s), "expires"),
            KeyTtl::Kept => (None, "kept"),
            KeyTtl::Missing => (None, "no key"),
            KeyTtl::Refused(_) => (None, "unknown"),
        };
        json!({"backend": "redis", "url": self.url, "key": self.key, "ttl": ttl, "expiry": expiry})
    }
}

/// Runs `status LOGIN`.
pub fn status(ctx: &Context, p: &Status) -> CliResult {
    let login = parse_login(&p.login)?;
    ctx.check_dirs()?;
    let shared = match ctx.settings.state {
        StateBackend::Redis => Some(Shared::read(ctx, &login)?),
        StateBackend::Files => None,
    };
    let info = describe(ctx, &ctx.store(), &ctx.pending(), &login)?;
    if p.json {
        let mut out = info.json();
        if let Some(shared) = &shared {
            out["shared_state"] = shared.json();
        }
        print_json(&out);
        return Ok(());
    }
    println!("login:       {}", info.login);
    match info.created {
        Some(created) => println!("mfa:         on (since {})", utc(created)),
        None => println!("mfa:         {}", info.mfa),
    }
    if let Some(label) = &info.label {
        println!("label:       {label}");
    }
    if let Some((alg, digits, period)) = &info.params {
        println!("codes:       {alg}, {digits} digits, every {period} s");
    }
    if info.mfa == "on" {
        println!("app pwds:    {}", info.app_passwords);
        println!("recovery:    {} unused codes", info.recovery_codes_left);
    }
    match (&info.last_success, &info.last_client) {
        (Some(t), Some(c)) if !c.is_empty() => println!("last code:   {} from {c}", utc(*t)),
        (Some(t), _) => println!("last code:   {}", utc(*t)),
        _ => println!("last code:   -"),
    }
    println!(
        "throttled:   {} ({} failed {} in the last {} min)",
        if info.throttled { "yes" } else { "no" },
        info.recent_failures,
        if info.recent_failures == 1 {
            "code"
        } else {
            "codes"
        },
        ctx.settings.fail_interval.div_ceil(60)
    );
    if let Some((expires_at, expired, replace)) = info.pending {
        let what = if replace {
            "a new secret to replace the active one"
        } else {
            "a new secret"
        };
        if expired {
            println!("pending:     {what}, expired at {}", utc(expires_at));
        } else {
            println!("pending:     {what}, to confirm before {}", utc(expires_at));
        }
    }
    if let Some(shared) = &shared {
        println!("state:       {} key {}", shared.url, shared.key);
        println!("key ttl:     {}", shared.ttl_text());
    }
    Ok(())
}

/// Runs `list`: every login with a record or a pending enrolment.
pub fn list(ctx: &Context, p: &List) -> CliResult {
    ctx.check_dirs()?;
    let store = ctx.store();
    let pending_store = ctx.pending();
    let mut logins: BTreeSet<Login> = store.list_logins()?.into_iter().collect();
    logins.extend(pending_store.list()?);
    let mut errors = 0;
    let mut rows = Vec::new();
    for login in &logins {
        match describe(ctx, &store, &pending_store, login) {
            Ok(info) => rows.push(Ok(info)),
            Err(failure) => {
                errors += 1;
                rows.push(Err((login.clone(), failure.message)));
            }
        }
    }
    if p.json {
        let items: Vec<Value> = rows
            .iter()
            .map(|row| match row {
                Ok(info) => info.json(),
                Err((login, error)) => {
                    json!({ "login": login.as_str(), "mfa": "error", "error": error })
                }
            })
            .collect();
        print_json(&Value::Array(items));
    } else {
        println!(
            "{:<32} {:<8} {:<21} {:<21} {:<16} THROTTLED",
            "LOGIN", "MFA", "SINCE", "LAST CODE", "FROM"
        );
        for row in &rows {
            match row {
                Ok(info) => println!(
                    "{:<32} {:<8} {:<21} {:<21} {:<16} {}",
                    info.login.as_str(),
                    info.mfa,
                    utc_or_dash(info.created),
                    utc_or_dash(info.last_success),
                    info.last_client
                        .as_deref()
                        .filter(|c| !c.is_empty())
                        .unwrap_or("-"),
                    if info.throttled { "yes" } else { "no" }
                ),
                Err((login, error)) => println!("{:<32} error    {error}", login.as_str()),
            }
        }
    }
    if errors > 0 {
        return Err(Failure::new(
            Exit::Error,
            format!("{errors} login(s) could not be read (see above)"),
        ));
    }
    Ok(())
}
