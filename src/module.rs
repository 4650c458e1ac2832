// One concept, one login through the module (split, verify, account); long for its comments.
//! One login through the module, top to bottom: read the inputs from the handle, load the
//! settings and the record, take the pure decision ([`crate::auth`]), update the state, log one
//! line and answer PAM.
//!
//! One line per login decision: `split` writes a line only when it decides (a refusal, a
//! fault, an accepted app password); when it passes the login on (no MFA, a code taken off) the
//! line is written by `verify`, naming the phase that decided (`phase=split reason=no_mfa`,
//! `phase=verify reason=ok`). A login whose password module refuses gets no line of ours: the
//! password module logs its own. Warnings (a rebuilt state, an event that could not be
//! spooled) are lines of their own.
//!
//! `split` keeps what it decided in the PAM handle ([`Kept`]) for `verify` and for the
//! `account` phase; `verify` refuses to run without it, so a stack that forgot `split` denies
//! every login instead of skipping the code.
//!
//! A refusal decided in `split` (no code, a wrong app password, `mfa_required`, an invalid
//! login) answers PAM_AUTH_ERR, which the shipped stacks map to `auth_err=bad`: libpam marks
//! the stack failed but still runs the password module, with its failure delay, so that for a
//! caller without the password the refusal costs what a wrong password costs for a mailbox
//! without MFA. Nothing then tells a stranger which mailboxes have MFA. `verify` denies such a
//! login again (without a second log line) should the password module accept the string.

use crate::auth::{self, Attempt, AttemptMemo, CodeKind, SplitDecision, SplitRequest};
use crate::config::{cache, ModuleArgs, Phase, Settings};
use crate::log::{Line, Outcome, Reason};
use crate::login::{self, Login};
use crate::mailbox::{self, Mailbox};
use crate::notify::{self, alert, event::LOGIN_FACE};
use crate::pam::handle::Handle;
use crate::pam::sys::effective_uid;
use crate::record::Record;
use crate::state::State;
use crate::store::backend::Backend;
use crate::store::secure::{self, Refusal, Walked};
use crate::store::{StateLoad, Store};
use libpam_sys as pam;
use std::ffi::c_int;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// The PAM environment variable that carries the last decision's reason to the application
/// (`mailmfa check` prints it). Holds only the reason name.
pub const REASON_ENV: &str = "MAILMFA_REASON";

/// What `split` leaves for `verify` and `account` in the PAM handle.
struct Kept {
    login: Login,
    split: Split,
    /// What `split` worked with: `verify` reuses the running user and the directories found
    /// trustworthy, and the settings when its own pam.d line names the same config file and
    /// overrides (the usual case), instead of checking `mailmfa.toml` again in the same login.
    ctx: LoginCtx,
    config_path: PathBuf,
    overrides: Vec<(String, String)>,
}

impl Kept {
    /// The kept settings, if `args` would load the same ones.
    fn settings_for(&self, args: &ModuleArgs) -> Option<&Arc<Settings>> {
        (self.config_path == args.config_path && self.overrides == args.overrides)
            .then_some(&self.ctx.settings)
    }
}

/// What `split` decided.
enum Split {
    /// The login has no MFA: the password went on untouched.
    NoMfa,
    /// A code was taken off the password; `verify` checks it.
    Code(Mfa),
    /// Refused (and logged) by `split`; the stack went on only to cost what a wrong password
    /// costs. `verify` and `account` deny.
    Refused,
    /// An app password was accepted and ended the `auth` stack: the password module never
    /// saw the mailbox, so `account` asks the password file whether it is still alive.
    AppPassword,
}

/// The record and the code of a login with MFA.
struct Mfa {
    record: Record,
    code: Zeroizing<Vec<u8>>,
    kind: CodeKind,
}

/// The context of one call, for its log line.
struct Call<'a> {
    handle: &'a Handle,
    phase: &'static str,
    user: String,
    service: String,
    rhost: String,
}

impl Call<'_> {
    /// Writes the log line of a decision (or of a warning such as `state_rebuilt`).
    fn log(&self, result: Outcome, reason: Reason, detail: Option<&str>) {
        self.log_as(self.phase, result, reason, detail);
    }

    /// [`Call::log`] naming `phase` as the one that decided.
    fn log_as(&self, phase: &str, result: Outcome, reason: Reason, detail: Option<&str>) {
        let line = Line {
            phase,
            user: &self.user,
            service: &self.service,
            rhost: &self.rhost,
            result,
            reason,
            detail,
        };
        let priority = match (result, detail) {
            (Outcome::Deny, Some(_)) => libc::LOG_ERR,
            (Outcome::Deny, None) => libc::LOG_NOTICE,
            (_, Some(_)) => libc::LOG_WARNING,
            _ => libc::LOG_INFO,
        };
        self.handle.log(priority, &line.to_string());
    }

    /// Logs the decision, publishes its reason and returns the PAM code for it.
    ///
    /// `split` answers PAM_IGNORE when the stack must go on to the password module (no MFA,
    /// or a code was taken off), so that PAM_SUCCESS from `split` always means "an app
    /// password was accepted" — which `[success=done ...]` on the pam.d line turns into the
    /// end of the stack. A refusal answers PAM_AUTH_ERR (`auth_err=bad` on the shipped
    /// `split` line: the stack fails but goes on to the password module); a fault answers
    /// PAM_SYSTEM_ERR (`default=die`: the stack stops).
    fn answer(&self, result: Outcome, reason: Reason, detail: Option<&str>) -> c_int {
        self.log(result, reason, detail);
        self.publish(reason);
        match result {
            Outcome::Pass | Outcome::Continue => pam::PAM_IGNORE,
            Outcome::Accept => pam::PAM_SUCCESS,
            Outcome::Deny if detail.is_some() => pam::PAM_SYSTEM_ERR,
            Outcome::Deny => pam::PAM_AUTH_ERR,
        }
    }

    /// Denies because of a fault the admin must fix (logged at LOG_ERR with the detail).
    fn fault(&self, reason: Reason, detail: &str) -> c_int {
        self.answer(Outcome::Deny, reason, Some(detail))
    }

    /// PAM_IGNORE without a line: `split` passing the login on to the password module and
    /// `verify`, or `verify` stepping aside after `split` decided and logged. The reason is
    /// still published for the application.
    fn pass_on(&self, reason: Reason) -> c_int {
        self.publish(reason);
        pam::PAM_IGNORE
    }

    /// `verify`'s line for what `split` decided (no MFA): logged now, once the password
    /// module accepted, under `split`'s name.
    fn pass_decided_in_split(&self, reason: Reason) -> c_int {
        self.log_as(Phase::Split.name(), Outcome::Pass, reason, None);
        self.pass_on(reason)
    }

    /// Sets the reason in the PAM environment (`mailmfa check` prints it).
    fn publish(&self, reason: Reason) {
        self.handle
            .putenv(&format!("{REASON_ENV}={}", reason.name()));
    }
}

/// What every entry point reads first: the call's context (for its log line), the user name
/// as PAM gave it, its normalised login, and the pam.d line's arguments.
struct Inputs<'a> {
    call: Call<'a>,
    raw_user: Vec<u8>,
    login: Result<Login, login::LoginError>,
    args: ModuleArgs,
}

impl<'a> Inputs<'a> {
    /// Reads the inputs; `Err` holds the PAM code of a fault already logged (under phase
    /// `phase` until the arguments name the phase).
    fn read(handle: &'a Handle, args: &[String], phase: &'static str) -> Result<Self, c_int> {
        let mut call = Call {
            handle,
            phase,
            user: String::new(),
            service: handle.item(pam::PAM_SERVICE),
            rhost: handle.item(pam::PAM_RHOST),
        };
        let raw_user = handle
            .user()
            .map_err(|_| call.fault(Reason::PamError, "pam_get_user failed"))?;
        let login = Login::parse(&raw_user);
        call.user = match &login {
            Ok(login) => login.to_string(),
            Err(_) => login::printable(&raw_user),
        };
        let args =
            ModuleArgs::parse(args).map_err(|e| call.fault(Reason::BadConfig, &e.to_string()))?;
        call.phase = args.phase.name();
        Ok(Inputs {
            call,
            raw_user,
            login,
            args,
        })
    }
}

/// `pam_sm_authenticate`: runs `split` or `verify` as the pam.d line says.
pub fn authenticate(handle: &Handle, args: &[String]) -> c_int {
    let Inputs {
        call, login, args, ..
    } = match Inputs::read(handle, args, "-") {
        Ok(inputs) => inputs,
        Err(code) => return code,
    };
    #[cfg(feature = "fault-injection")]
    if args.fault_inject_panic {
        panic!("fault injection: panic inside the module");
    }
    let login = match login {
        Ok(login) => login,
        Err(_) => return call.answer(Outcome::Deny, Reason::InvalidLogin, None),
    };
    let kept = match args.phase {
        Phase::Verify => handle.kept::<Kept>(),
        Phase::Split | Phase::Account => None,
    };
    let (euid, walked) = match kept {
        Some(kept) => (kept.ctx.euid, Arc::clone(&kept.ctx.walked)),
        None => (effective_uid(), Arc::default()),
    };
    let settings = match kept.and_then(|k| k.settings_for(&args)) {
        Some(settings) => Arc::clone(settings),
        None => match cache::load(&args, euid, Some(&walked)) {
            Ok(settings) => settings,
            Err(detail) => return call.fault(Reason::BadConfig, &detail),
        },
    };
    let store = Backend::open_in(&settings, euid, Some(Arc::clone(&walked)));
    let login_ctx = LoginCtx {
        settings,
        euid,
        walked,
    };
    match args.phase {
        Phase::Split => split(&call, login, &args, login_ctx, &store),
        Phase::Verify => verify(&call, &login, &login_ctx, &store),
        Phase::Account => call.fault(
            Reason::BadConfig,
            "`account` belongs on the `account` line, not on an `auth` line",
        ),
    }
}

/// `pam_sm_acct_mgmt` (`account required pam_mailmfa.so account pwdfile=PATH`): a login that
/// got in with an app password (which skipped the password module) is allowed only while its
/// mailbox still has an unlocked line in the password file. Logins whose password the
/// password module checked in this same transaction pass without a read.
pub fn account(handle: &Handle, args: &[String]) -> c_int {
    let Inputs {
        call,
        raw_user,
        login,
        args,
    } = match Inputs::read(handle, args, "account") {
        Ok(inputs) => inputs,
        Err(code) => return code,
    };
    let Some(pwdfile) = args
        .pwdfile
        .as_deref()
        .filter(|_| args.phase == Phase::Account)
    else {
        return call.fault(
            Reason::BadConfig,
            "the `account` line takes `account pwdfile=PATH`, not `split` or `verify`",
        );
    };
    let kept = handle
        .kept::<Kept>()
        .filter(|k| login.as_ref().is_ok_and(|l| *l == k.login));
    match kept.map(|k| &k.split) {
        Some(Split::NoMfa | Split::Code(_)) => pam::PAM_SUCCESS,
        Some(Split::Refused) => pam::PAM_AUTH_ERR,
        // An app password, or no `auth` in this transaction: ask the password file.
        Some(Split::AppPassword) | None => match mailbox(pwdfile, &raw_user) {
            Ok(Mailbox::Alive) => pam::PAM_SUCCESS,
            Ok(Mailbox::Gone) => call.answer(Outcome::Deny, Reason::MailboxGone, None),
            Ok(Mailbox::Locked) => call.answer(Outcome::Deny, Reason::MailboxLocked, None),
            Err(detail) => call.fault(Reason::BadConfig, &detail),
        },
    }
}

/// Looks the user up in the password file, opened and checked like every file the module
/// reads (no symlink, owner root or the running user, not group/world-writable).
fn mailbox(pwdfile: &Path, user: &[u8]) -> Result<Mailbox, String> {
    match secure::open_checked(pwdfile, effective_uid()) {
        Ok(Some((file, _))) => mailbox::lookup(BufReader::new(file), user)
            .map_err(|e| cache::refused(pwdfile, Refusal::Io(e))),
        Ok(None) => Err(format!("{}: does not exist", pwdfile.display())),
        Err(refusal) => Err(cache::refused(pwdfile, refusal)),
    }
}

/// What one phase of a login works with, beyond the call: the settings, the running user and
/// the directories found trustworthy (all kept from `split` for `verify`).
#[derive(Clone)]
struct LoginCtx {
    settings: Arc<Settings>,
    euid: u32,
    walked: Arc<Walked>,
}

/// `split`: look the login up, take the code off the password, keep it for `verify`; or
/// accept an app password outright.
fn split(
    call: &Call<'_>,
    login: Login,
    args: &ModuleArgs,
    ctx: LoginCtx,
    store: &Backend,
) -> c_int {
    let settings = &ctx.settings;
    let record = match store.read_record(&login) {
        Ok(record) => record,
        Err(e) => return call.fault(e.reason(), &e.to_string()),
    };
    let supplied = match call.handle.authtok() {
        Ok(tok) => tok,
        Err(_) => return call.fault(Reason::PamError, "pam_get_authtok failed"),
    };
    let now = unix_now();
    let request = SplitRequest {
        supplied: &supplied,
        service: &call.service,
        client: &call.rhost,
        now,
    };
    // Keeps what split decided, then answers (passing the login on without a line when the
    // decision is `verify`'s to log); a handle that cannot keep it denies.
    let keep_and_answer = |split, result, reason| {
        let kept = Kept {
            login: login.clone(),
            split,
            ctx: ctx.clone(),
            config_path: args.config_path.clone(),
            overrides: args.overrides.clone(),
        };
        match (call.handle.keep(kept), result) {
            (Err(_), _) => call.fault(Reason::PamError, "pam_set_data failed"),
            (Ok(()), Outcome::Pass | Outcome::Continue) => call.pass_on(reason),
            (Ok(()), _) => call.answer(result, reason, None),
        }
    };
    match auth::decide_split(record.as_ref(), request, settings) {
        // The authtok stays the whole string: the password module checks it (and fails, or
        // `verify` denies), so this refusal costs what a wrong password costs.
        SplitDecision::Deny(reason) => keep_and_answer(Split::Refused, Outcome::Deny, reason),
        SplitDecision::NoMfa => keep_and_answer(Split::NoMfa, Outcome::Pass, Reason::NoMfa),
        SplitDecision::AppPassword { name } => {
            let Some(record) = record.as_ref() else {
                return call.fault(Reason::InternalError, "an app password without a record");
            };
            let client = auth::client_key(&call.rhost, settings);
            let mut note_use = |state: &mut State| {
                auth::record_app_password_use(record, state, &name, &client, now, settings)
            };
            match with_state(call, store, &login, &mut note_use, false) {
                Ok(()) => keep_and_answer(Split::AppPassword, Outcome::Accept, Reason::AppPassword),
                Err(code) => code,
            }
        }
        SplitDecision::Code { password_len, kind } => {
            let (password, code) = supplied.split_at(password_len);
            if call.handle.set_authtok(password).is_err() {
                return call.fault(Reason::PamError, "pam_set_item(PAM_AUTHTOK) failed");
            }
            let split = match record {
                Some(record) => Split::Code(Mfa {
                    record,
                    code: Zeroizing::new(code.to_vec()),
                    kind,
                }),
                None => Split::NoMfa,
            };
            keep_and_answer(split, Outcome::Continue, Reason::CodeSplit)
        }
    }
}

/// `verify`: check the kept code against the record and the state, and record its use.
fn verify(call: &Call<'_>, login: &Login, ctx: &LoginCtx, store: &Backend) -> c_int {
    let settings = &*ctx.settings;
    let Some(kept) = call.handle.kept::<Kept>().filter(|k| &k.login == login) else {
        return call.fault(
            Reason::NoSplit,
            "no `pam_mailmfa.so split` ran before `verify` for this login in this stack",
        );
    };
    let mfa = match &kept.split {
        Split::Code(mfa) => mfa,
        // Decided by `split`, logged now that the password module accepted.
        Split::NoMfa => return call.pass_decided_in_split(Reason::NoMfa),
        // Logged by `split`; deny again in case the password module took the whole string.
        Split::Refused => return pam::PAM_AUTH_ERR,
        // Only reached on a stack without `success=done` on `split`, which logged the accept:
        // nothing left to check.
        Split::AppPassword => return call.pass_on(Reason::AppPassword),
    };
    let attempt = Attempt {
        code: &mfa.code,
        kind: mfa.kind,
        client: &call.rhost,
        now: unix_now(),
    };
    let source = alert::Source {
        face: LOGIN_FACE,
        service: Some(&call.service),
        client: &call.rhost,
        now: attempt.now,
    };
    let mut verdict = None;
    let mut notice = None;
    // The store may decide twice (unlocked, then locked): the HMACs are computed once.
    let memo = AttemptMemo::default();
    let mut decide = |state: &mut State| {
        let v = auth::decide_verify_with(&mfa.record, state, attempt, settings, &memo);
        let changed = v.state_changed;
        notice = alert::notice_of_verdict(settings, login, &mfa.record, state, &v, source);
        verdict = Some(v);
        changed
    };
    if let Err(code) = with_state(call, store, login, &mut decide, true) {
        return code;
    }
    // The owner's notice (a recovery code used, or an alert): spooled, never waited for; a
    // spool that cannot take it is logged and changes nothing.
    if let Some(notice) = notice {
        if let Err(e) = notify::tell(settings, ctx.euid, &notice) {
            call.log(
                Outcome::Continue,
                Reason::NotifySpoolFailed,
                Some(&e.to_string()),
            );
        }
    }
    match verdict {
        Some(v) if v.accepted() => call.answer(Outcome::Accept, v.reason, None),
        Some(v) => call.answer(Outcome::Deny, v.reason, None),
        None => call.fault(Reason::InternalError, "the state update did not run"),
    }
}

/// Runs `decide` on the login's state under the store's lock (`pure`: a decision without side
/// effects, which the store may first take on an unlocked snapshot; see
/// [`Store::decide_state`]). `decide` repairs a rebuilt state itself
/// ([`auth::repair_rebuilt`]); the rebuild is logged as a warning saying what it costs and
/// what the admin does. A store error is answered as a fault (the `Err` holds the PAM code to
/// return).
fn with_state(
    call: &Call<'_>,
    store: &Backend,
    login: &Login,
    decide: &mut dyn FnMut(&mut State) -> bool,
    pure: bool,
) -> Result<(), c_int> {
    let result = if pure {
        store.decide_state(login, decide)
    } else {
        store.update_state(login, decide)
    };
    match result {
        Err(e) => Err(call.fault(e.reason(), &e.to_string())),
        Ok(StateLoad::Rebuilt(why)) => {
            let detail = format!(
                "{why}; rebuilt: the codes valid now are refused from every client, and every \
                 recovery code counts as used until new ones are issued with `mailmfa \
                 recovery-codes {login}`"
            );
            call.log(Outcome::Continue, Reason::StateRebuilt, Some(&detail));
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

/// Logs a panic caught at the boundary (no detail: the panic message is not trusted to be free
/// of data).
pub fn log_panic(handle: &Handle) {
    let line = Line {
        phase: "-",
        user: "-",
        service: &handle.item(pam::PAM_SERVICE),
        rhost: &handle.item(pam::PAM_RHOST),
        result: Outcome::Deny,
        reason: Reason::InternalError,
        detail: Some("panic caught at the PAM boundary; please report it"),
    };
    handle.log(libc::LOG_ERR, &line.to_string());
    handle.putenv(&format!("{REASON_ENV}={}", Reason::InternalError.name()));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
