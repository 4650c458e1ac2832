//! `mailmfa enable LOGIN`: turn MFA on. A new secret is shown once (URI and QR code), and MFA
//! is on only after a right code of it was typed: interactively, or for panels in two steps,
//! `--begin` (a pending enrolment that expires) and `--confirm CODE`.
//!
//! An active record is replaced only with `--replace` and a current code of the old secret
//! (checked like a login), or `--replace --force`. Confirming writes the record and marks the
//! confirming code's step as used in a fresh state, under the state lock the module takes, so
//! the confirming code cannot log in afterwards.

use super::args::{Parsed, Spec};
use super::audit::Event;
use super::code;
use super::exit::{CliResult, Exit, Failure};
use super::output::{print_json, utc};
use super::prompt;
use super::qr::{self, Matrix};
use super::{parse_login, Context};
use mailmfa::auth::{self, Attempt, CodeKind};
use mailmfa::login::Login;
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use mailmfa::state::State;
use mailmfa::store::files::FileStore;
use mailmfa::store::pending::{Pending, PENDING_LIFETIME};
use mailmfa::store::{Store, StoreError};
use serde_json::json;
use std::path::Path;

/// What `enable` accepts.
pub const SPEC: Spec = Spec {
    command: "enable",
    flags: &["begin", "json", "replace", "force", "invert"],
    values: &["confirm", "code", "label", "qr-png", "qr-svg"],
    positionals: &["LOGIN"],
};

/// The client name the confirming code is recorded under in the state.
pub const ENABLE_CLIENT: &str = "mailmfa-enable";

/// The client name a code of the old secret is checked as, for `--replace`.
pub const REPLACE_CLIENT: &str = "mailmfa-replace";

/// Bytes of a new secret: 160 bits, the size RFC 4226 recommends for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// Wrong codes the interactive flow takes before it gives up.
const INTERACTIVE_TRIES: u32 = 3;

/// Runs `enable`.
pub fn run(ctx: &Context, p: &Parsed) -> CliResult {
    let login = parse_login(&p.positionals[0])?;
    let (begin, confirm, json) = (p.flag("begin"), p.value("confirm"), p.flag("json"));
    if begin && confirm.is_some() {
        return Err(Failure::usage(
            "enable: give --begin or --confirm, not both",
        ));
    }
    if json && !begin && confirm.is_none() {
        return Err(Failure::usage(
            "enable: --json goes with --begin or --confirm",
        ));
    }
    if p.flag("force") && !p.flag("replace") {
        return Err(Failure::usage("enable: --force only goes with --replace"));
    }
    if p.value("code").is_some() && (!p.flag("replace") || p.flag("force")) {
        return Err(Failure::usage(
            "enable: --code (a code of the old secret) only goes with --replace",
        ));
    }
    if confirm.is_some() {
        for option in ["replace", "invert"] {
            if p.flag(option) {
                return Err(Failure::usage(format!(
                    "enable: --{option} goes with --begin, not --confirm"
                )));
            }
        }
        for option in ["label", "qr-png", "qr-svg"] {
            if p.value(option).is_some() {
                return Err(Failure::usage(format!(
                    "enable: --{option} goes with --begin, not --confirm"
                )));
            }
        }
    }
    ctx.check_dirs()?;
    if let Some(typed) = confirm {
        return confirm_pending(ctx, &login, typed, json);
    }
    let action = if begin { "enable-begin" } else { "enable" };
    let replace = authorise_replace(ctx, &login, p, action)?;
    let record = new_record(ctx, p.value("label"))?;
    let uri = qr::uri(&ctx.settings.issuer, &login, &record);
    let matrix = Matrix::new(&uri)?;
    if let Some(path) = p.value("qr-png") {
        qr::write_new_file(Path::new(path), &matrix.png())?;
    }
    if let Some(path) = p.value("qr-svg") {
        qr::write_new_file(Path::new(path), matrix.svg().as_bytes())?;
    }
    let shown = Shown {
        login: &login,
        record: &record,
        uri: &uri,
        matrix: &matrix,
        invert: p.flag("invert"),
    };
    if begin {
        begin_pending(ctx, shown, replace, p.flag("force"), json)
    } else {
        interactive(ctx, shown, replace, p.flag("force"))
    }
}

/// A new secret and what shows it.
struct Shown<'a> {
    login: &'a Login,
    record: &'a Record,
    uri: &'a str,
    matrix: &'a Matrix,
    invert: bool,
}

impl Shown<'_> {
    /// Prints the QR code, the URI and the key for typing in by hand.
    fn print(&self, ctx: &Context) {
        println!("Scan this QR code with an authenticator app (Aegis, FreeOTP, Google Authenticator, ...):");
        println!();
        print!("{}", self.matrix.terminal(2, self.invert));
        println!();
        println!(
            "If the QR code does not scan (try --invert on a light terminal), add it by hand:"
        );
        println!("  URI:    {}", self.uri);
        println!("  key:    {}", grouped(&self.record.secret_base32()));
        println!(
            "  type:   time-based (TOTP), {}, {} digits, every {} s; account {} at {}",
            self.record.algorithm.name(),
            self.record.digits,
            self.record.period,
            self.login,
            ctx.settings.issuer
        );
    }
}

/// The key in groups of four, as apps show it.
fn grouped(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A record with a fresh 160-bit secret from the OS random source and the settings' digits
/// and period.
fn new_record(ctx: &Context, label: Option<&str>) -> Result<Record, Failure> {
    if let Some(label) = label {
        if label.chars().count() > 100 || label.chars().any(char::is_control) {
            return Err(Failure::usage(
                "enable: --label is at most 100 characters of text, no control characters",
            ));
        }
    }
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|e| Failure::new(Exit::Error, format!("the OS random source failed: {e}")))?;
    let mut record = Record::new(
        secret,
        Algorithm::SHA1,
        ctx.settings.digits,
        ctx.settings.period,
        ctx.now,
    )
    .map_err(|e| Failure::new(Exit::Error, format!("cannot make a record: {e}")))?;
    record.label = label.map(str::to_string);
    Ok(record)
}

/// Decides whether an active record may be replaced: `Ok(false)` when there is none,
/// `Ok(true)` with `--replace` and a current code of the old secret, or `--replace --force`
/// (also for a damaged record). Its app passwords and recovery codes carry over when the new
/// secret is confirmed (see [`activate`]).
fn authorise_replace(
    ctx: &Context,
    login: &Login,
    p: &Parsed,
    action: &str,
) -> Result<bool, Failure> {
    let store = ctx.store();
    let (replace, force) = (p.flag("replace"), p.flag("force"));
    let old = match store.read_record(login) {
        Ok(None) => return Ok(false),
        Ok(Some(old)) => Some(old),
        // A damaged record can only be replaced by force: no code of it can be checked.
        Err(StoreError::BadRecord { .. }) if replace && force => None,
        Err(e) => return Err(e.into()),
    };
    if !replace {
        let since = old
            .as_ref()
            .map(|r| format!(" (since {})", utc(r.created)))
            .unwrap_or_default();
        return Err(Failure::new(
            Exit::Conflict,
            format!(
                "MFA is already on for {login}{since}. To replace the secret (a new phone), add \
                 --replace and a current code of the old secret (--code CODE), or --replace --force"
            ),
        ));
    }
    let Some(old) = old else {
        return Ok(true);
    };
    if force {
        return Ok(true);
    }
    let typed = match p.value("code") {
        Some(typed) => zeroize::Zeroizing::new(typed.to_string()),
        None => prompt::line(&format!("Current code of the OLD secret of {login}: "))?.ok_or_else(
            || {
                Failure::new(
                    Exit::CodeRefused,
                    "no code of the old secret given: nothing was changed",
                )
            },
        )?,
    };
    let result = code::normalise(&typed, old.digits).and_then(|c| {
        code::check_current(
            ctx,
            &store,
            login,
            &old,
            (&c, CodeKind::Totp),
            REPLACE_CLIENT,
        )
    });
    if let Err(failure) = result {
        audit(
            action,
            login,
            true,
            false,
            "refused",
            Some("old_code_refused"),
        );
        return Err(failure);
    }
    Ok(true)
}

/// `--begin`: stores the pending enrolment and shows the secret once.
fn begin_pending(
    ctx: &Context,
    shown: Shown<'_>,
    replace: bool,
    force: bool,
    json: bool,
) -> CliResult {
    let pending_store = ctx.pending();
    let replaced_pending = pending_store
        .read(shown.login)
        .map(|p| p.is_some())
        .unwrap_or(true);
    let pending = Pending {
        record: shown.record.clone(),
        expires_at: ctx.now + PENDING_LIFETIME,
        replace,
        failed: 0,
    };
    pending_store.write(shown.login, &pending)?;
    audit("enable-begin", shown.login, replace, force, "ok", None);
    if json {
        print_json(&json!({
            "login": shown.login.as_str(),
            "uri": shown.uri,
            "secret": shown.record.secret_base32().as_str(),
            "issuer": ctx.settings.issuer,
            "algorithm": shown.record.algorithm.name(),
            "digits": shown.record.digits,
            "period": shown.record.period,
            "expires_at": pending.expires_at,
            "replace": replace,
            "replaced_pending": replaced_pending,
            "qr_svg": shown.matrix.svg(),
        }));
    } else {
        shown.print(ctx);
        println!();
        println!(
            "MFA stays off until the enrolment is confirmed, before {}:\n  mailmfa enable {} --confirm CODE",
            utc(pending.expires_at),
            shown.login
        );
    }
    Ok(())
}

/// `--confirm CODE`: turns the pending enrolment on when the code is right.
fn confirm_pending(ctx: &Context, login: &Login, typed: &str, json: bool) -> CliResult {
    let pending_store = ctx.pending();
    let Some(mut pending) = pending_store.read(login)? else {
        return Err(Failure::new(
            Exit::Conflict,
            format!(
                "no pending enrolment for {login}: start one with `mailmfa enable {login} --begin`"
            ),
        ));
    };
    let action = "enable-confirm";
    if pending.expired(ctx.now) {
        pending_store.remove(login)?;
        audit(
            action,
            login,
            pending.replace,
            false,
            "expired",
            Some("expired"),
        );
        return Err(Failure::new(
            Exit::Expired,
            format!(
                "the enrolment of {login} expired at {}: MFA stays as it was. Start again with \
                 `mailmfa enable {login} --begin`",
                utc(pending.expires_at)
            ),
        ));
    }
    let store = ctx.store();
    let active = match store.read_record(login) {
        Ok(record) => record.is_some(),
        Err(StoreError::BadRecord { .. }) if pending.replace => true,
        Err(e) => return Err(e.into()),
    };
    if active && !pending.replace {
        return Err(Failure::new(
            Exit::Conflict,
            format!(
                "MFA was turned on for {login} after this enrolment began: start again with \
                 `mailmfa enable {login} --begin --replace`"
            ),
        ));
    }
    let code = code::normalise(typed, pending.record.digits)?;
    if !code::confirms(ctx, &pending.record, &code) {
        pending.failed += 1;
        let max = ctx.settings.max_failures;
        if pending.failed >= max {
            pending_store.remove(login)?;
            audit(
                action,
                login,
                pending.replace,
                false,
                "expired",
                Some("too_many_codes"),
            );
            return Err(Failure::new(
                Exit::Expired,
                format!(
                    "wrong code for {login}, the {max}th: the enrolment is cancelled and MFA stays \
                     as it was. Check the phone's clock, then start again with --begin"
                ),
            ));
        }
        pending_store.write(login, &pending)?;
        audit(
            action,
            login,
            pending.replace,
            false,
            "refused",
            Some("bad_code"),
        );
        let left = max - pending.failed;
        return Err(Failure::new(
            Exit::CodeRefused,
            format!(
                "wrong code for {login}: {left} {} left before the enrolment is cancelled; MFA \
                 stays as it was until a right code is given",
                if left == 1 { "try" } else { "tries" }
            ),
        ));
    }
    let mut record = pending.record.clone();
    record.created = ctx.now;
    activate(ctx, &store, login, &record, &code)?;
    pending_store.remove(login)?;
    audit(action, login, pending.replace, false, "ok", None);
    if json {
        print_json(&json!({ "login": login.as_str(), "mfa": "on", "created": record.created }));
    } else {
        print_turned_on(login);
    }
    Ok(())
}

/// The interactive flow: show the secret, then ask for a code until it is right (a few tries).
fn interactive(ctx: &Context, shown: Shown<'_>, replace: bool, force: bool) -> CliResult {
    let login = shown.login;
    shown.print(ctx);
    println!();
    if replace {
        println!("The old secret stays active until a code of the new one is confirmed.");
    }
    for attempt in 1..=INTERACTIVE_TRIES {
        let Some(typed) = prompt::line(&format!(
            "Code shown by the app for {login} (MFA stays off until it is right): "
        ))?
        else {
            audit("enable", login, replace, force, "refused", Some("no_code"));
            return Err(Failure::new(
                Exit::CodeRefused,
                format!("no code given: MFA stays as it was for {login}"),
            ));
        };
        let left = INTERACTIVE_TRIES - attempt;
        match code::normalise(&typed, shown.record.digits) {
            Ok(code) if code::confirms(ctx, shown.record, &code) => {
                let mut record = shown.record.clone();
                record.created = ctx.now;
                activate(ctx, &ctx.store(), login, &record, &code)?;
                audit("enable", login, replace, force, "ok", None);
                print_turned_on(login);
                return Ok(());
            }
            Ok(_) => eprintln!(
                "mailmfa: wrong code ({left} {} left)",
                if left == 1 { "try" } else { "tries" }
            ),
            Err(f) => eprintln!(
                "mailmfa: {f} ({left} {} left)",
                if left == 1 { "try" } else { "tries" }
            ),
        }
    }
    audit("enable", login, replace, force, "refused", Some("bad_code"));
    Err(Failure::new(
        Exit::CodeRefused,
        format!(
            "{INTERACTIVE_TRIES} wrong codes: MFA stays as it was for {login}. Check that the phone's \
             clock is right, then start again"
        ),
    ))
}

/// Writes the record and marks the confirming code's step as used, in one critical section
/// under the state lock: what the state knows of codes starts afresh (its steps, sessions and
/// failures belonged to no secret or to the old one), the code is recorded like a login from
/// `mailmfa-enable`, then the record is written. A login of this user waits for the lock, so
/// it sees both or neither. When the record carries recovery codes over from the old one, the
/// state keeps which of them were used (all of them when the state was rebuilt), and the app
/// passwords' last uses.
fn activate(
    ctx: &Context,
    store: &FileStore,
    login: &Login,
    record: &Record,
    code: &[u8],
) -> Result<(), Failure> {
    let mut result = None;
    let update = store.update_state(login, &mut |state| {
        // A new phone does not change the mail clients' app passwords or the printed recovery
        // codes: they carry over from the record being replaced, read now, under the lock.
        let mut record = record.clone();
        let current = store.read_record(login).ok().flatten();
        if let Some(current) = &current {
            record.app_passwords = current.app_passwords.clone();
            record.recovery_codes = current.recovery_codes.clone();
        }
        let record = &record;
        // A rebuilt state is repaired against the record in force (its recovery codes are the
        // ones carried over), and stays so if the new record is not written.
        auth::repair_rebuilt(
            state,
            current.as_ref().unwrap_or(record),
            ctx.now,
            &ctx.settings,
        );
        let in_force = state.clone();
        let mut fresh = State::default();
        if !record.recovery_codes.is_empty() || !record.app_passwords.is_empty() {
            fresh.used_recovery = std::mem::take(&mut state.used_recovery);
            fresh.app_password_uses = std::mem::take(&mut state.app_password_uses);
        }
        *state = fresh;
        let attempt = Attempt {
            kind: CodeKind::Totp,
            code,
            client: ENABLE_CLIENT,
            now: ctx.now,
        };
        let verdict = auth::decide_verify(record, state, attempt, &ctx.settings);
        if !verdict.accepted() {
            result = Some(Err(Failure::new(
                Exit::CodeRefused,
                format!(
                    "the code was refused ({}): MFA stays as it was",
                    verdict.reason.name()
                ),
            )));
            *state = in_force;
            return false;
        }
        match store.write_record(login, record) {
            Ok(()) => {
                result = Some(Ok(()));
                true
            }
            Err(e) => {
                result = Some(Err(e.into()));
                *state = in_force;
                false
            }
        }
    });
    update.map_err(|e| {
        let mut failure = Failure::from(e);
        if matches!(result, Some(Ok(()))) {
            failure.message.push_str(
                " (the record was written, so MFA is on, but the confirming code could not be marked used)",
            );
        }
        failure
    })?;
    result.unwrap_or_else(|| Err(Failure::new(Exit::Error, "the state update did not run")))
}

fn print_turned_on(login: &Login) {
    println!(
        "MFA is on for {login}. Log in with the password followed by the current code, as one \
         string: password T9D3K!px and code 189 145 -> T9D3K!px189145"
    );
}

fn audit(
    action: &str,
    login: &Login,
    replace: bool,
    force: bool,
    result: &str,
    reason: Option<&str>,
) {
    Event {
        action,
        login,
        name: None,
        replace,
        force,
        result,
        reason,
    }
    .send();
}
