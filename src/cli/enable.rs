//! `mailmfa enable LOGIN`: turn MFA on. A new secret is shown once (URI and QR code), and MFA
//! is on only after a right code of it was typed: interactively, or for panels in two steps,
//! `--begin` (a pending enrolment that expires) and `--confirm CODE`.
//!
//! An active record is replaced only with `--replace` and a current code of the old secret
//! (checked like a login), or `--replace --force`. The rules are in `mailmfa::account::enrol`;
//! here are the options, the prompts, the QR code and the output.

use super::command::Enable;
use super::exit::{CliResult, Exit, Failure};
use super::output::{print_json, utc};
use super::prompt;
use super::qr::{self, Qr};
use super::{parse_login, Context};
use mailmfa::account::enrol::{self, Enrolment, Flow, MAX_LABEL_CHARS, REPLACE_CLIENT};
use mailmfa::account::{AccountError, CodeRefusal, Proof};
use mailmfa::login::Login;
use mailmfa::record::Record;
use mailmfa::store::Store;
use serde_json::json;
use std::path::Path;
use zeroize::Zeroizing;

/// Wrong codes the interactive flow takes before it gives up.
const INTERACTIVE_TRIES: u32 = 3;

/// Runs `enable`.
pub fn run(ctx: &Context, p: &Enable) -> CliResult {
    let login = parse_login(&p.login)?;
    let (begin, confirm, json) = (p.begin, p.confirm.as_deref(), p.json);
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
    if p.force && !p.replace {
        return Err(Failure::usage("enable: --force only goes with --replace"));
    }
    if p.code.is_some() && (!p.replace || p.force) {
        return Err(Failure::usage(
            "enable: --code (a code of the old secret) only goes with --replace",
        ));
    }
    if confirm.is_some() {
        let given = [
            ("replace", p.replace),
            ("invert", p.invert),
            ("label", p.label.is_some()),
            ("qr-png", p.qr_png.is_some()),
            ("qr-svg", p.qr_svg.is_some()),
        ];
        if let Some((option, _)) = given.into_iter().find(|(_, given)| *given) {
            return Err(Failure::usage(format!(
                "enable: --{option} goes with --begin, not --confirm"
            )));
        }
    }
    if let Some(label) = p.label.as_deref() {
        enrol::check_label(Some(label)).map_err(|_| {
            Failure::usage(format!(
                "enable: --label is at most {MAX_LABEL_CHARS} characters of text, no control \
                 characters"
            ))
        })?;
    }
    ctx.check_dirs()?;
    if let Some(typed) = confirm {
        return confirm_pending(ctx, &login, typed, json);
    }
    let old_code = old_code(ctx, &login, p)?;
    let replace = match (p.replace, p.force) {
        (false, _) => None,
        (true, true) => Some(Proof::Force),
        (true, false) => Some(Proof::Code(&old_code)),
    };
    let acct = ctx.acct();
    let label = p.label.as_deref();
    let flow = if begin {
        Flow::Pending
    } else {
        Flow::Interactive
    };
    let mut enrolment = enrol::prepare(&acct, &login, label, replace, REPLACE_CLIENT, flow)
        .map_err(ctx.failure(&login))?;
    let qr = Qr::new(&enrolment.uri)?;
    if let Some(path) = p.qr_png.as_deref() {
        qr::write_new_file(Path::new(path), &qr.png()?)?;
    }
    if let Some(path) = p.qr_svg.as_deref() {
        qr::write_new_file(Path::new(path), qr.svg().as_bytes())?;
    }
    if begin {
        enrol::keep(&acct, &login, &mut enrolment).map_err(ctx.failure(&login))?;
    }
    let shown = Shown {
        login: &login,
        record: &enrolment.record,
        uri: &enrolment.uri,
        key: &enrolment.key,
        qr: &qr,
        invert: p.invert,
    };
    if begin {
        begin_pending(ctx, &shown, &enrolment, json)
    } else {
        interactive(ctx, &shown, enrolment.replace)
    }
}

/// The code of the old secret for `--replace` without `--force`: `--code`, or asked for when
/// there is an active record to check it against (empty otherwise: nothing is replaced).
fn old_code(ctx: &Context, login: &Login, p: &Enable) -> Result<Zeroizing<String>, Failure> {
    if let Some(typed) = p.code.as_deref() {
        return Ok(Zeroizing::new(typed.to_string()));
    }
    if !p.replace || p.force {
        return Ok(Zeroizing::new(String::new()));
    }
    if !matches!(ctx.store().read_record(login), Ok(Some(_))) {
        return Ok(Zeroizing::new(String::new()));
    }
    prompt::line(&format!("Current code of the OLD secret of {login}: "))?.ok_or_else(|| {
        Failure::new(
            Exit::CodeRefused,
            "no code of the old secret given: nothing was changed",
        )
    })
}

/// A new secret and what shows it.
struct Shown<'a> {
    login: &'a Login,
    record: &'a Record,
    uri: &'a str,
    key: &'a str,
    qr: &'a Qr,
    invert: bool,
}

impl Shown<'_> {
    /// Prints the QR code, the URI and the key for typing in by hand.
    fn print(&self, ctx: &Context) {
        println!("Scan this QR code with an authenticator app (Aegis, FreeOTP, Google Authenticator, ...):");
        println!();
        println!("{}", self.qr.terminal(self.invert));
        println!();
        println!(
            "If the QR code does not scan (try --invert on a light terminal), add it by hand:"
        );
        println!("  URI:    {}", self.uri);
        println!("  key:    {}", self.key);
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

/// `--begin`: shows the secret of the stored pending enrolment once.
fn begin_pending(ctx: &Context, shown: &Shown<'_>, enrolment: &Enrolment, json: bool) -> CliResult {
    if json {
        print_json(&json!({
            "login": shown.login.as_str(),
            "uri": shown.uri,
            "secret": shown.record.secret_base32().as_str(),
            "issuer": ctx.settings.issuer,
            "algorithm": shown.record.algorithm.name(),
            "digits": shown.record.digits,
            "period": shown.record.period,
            "expires_at": enrolment.expires_at,
            "replace": enrolment.replace,
            "replaced_pending": enrolment.replaced_pending,
            "qr_svg": shown.qr.svg(),
        }));
    } else {
        shown.print(ctx);
        println!();
        println!(
            "MFA stays off until the enrolment is confirmed, before {}:\n  mailmfa enable {} --confirm CODE",
            utc(enrolment.expires_at),
            shown.login
        );
    }
    Ok(())
}

/// `--confirm CODE`: turns the pending enrolment on when the code is right.
fn confirm_pending(ctx: &Context, login: &Login, typed: &str, json: bool) -> CliResult {
    let record = enrol::confirm(&ctx.acct(), login, typed).map_err(|e| match e {
        AccountError::CodeRefused(CodeRefusal::Wrong { tries_left }) => Failure::new(
            Exit::CodeRefused,
            format!(
                "wrong code for {login}: {tries_left} {} left before the enrolment is cancelled; \
                 MFA stays as it was until a right code is given",
                if tries_left == 1 { "try" } else { "tries" }
            ),
        ),
        e => ctx.failure(login)(e),
    })?;
    if json {
        print_json(&json!({ "login": login.as_str(), "mfa": "on", "created": record.created }));
    } else {
        print_turned_on(login);
    }
    Ok(())
}

/// The interactive flow: show the secret, then ask for a code until it is right (a few tries).
fn interactive(ctx: &Context, shown: &Shown<'_>, replace: bool) -> CliResult {
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
            return Err(Failure::new(
                Exit::CodeRefused,
                format!("no code given: MFA stays as it was for {login}"),
            ));
        };
        let left = INTERACTIVE_TRIES - attempt;
        let tries = if left == 1 { "try" } else { "tries" };
        match enrol::confirm_new(&ctx.acct(), login, shown.record, &typed) {
            Ok(()) => {
                print_turned_on(login);
                return Ok(());
            }
            Err(AccountError::CodeRefused(CodeRefusal::Wrong { .. })) => {
                eprintln!("mailmfa: wrong code ({left} {tries} left)")
            }
            Err(e @ AccountError::BadCodeFormat { .. }) => {
                eprintln!("mailmfa: {e} ({left} {tries} left)")
            }
            Err(e) => return Err(ctx.failure(login)(e)),
        }
    }
    Err(Failure::new(
        Exit::CodeRefused,
        format!(
            "{INTERACTIVE_TRIES} wrong codes: MFA stays as it was for {login}. Check that the phone's \
             clock is right, then start again"
        ),
    ))
}

fn print_turned_on(login: &Login) {
    println!(
        "MFA is on for {login}. Log in with the password followed by the current code, as one \
         string: password T9D3K!px and code 189 145 -> T9D3K!px189145"
    );
}
