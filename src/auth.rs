//! The decisions of `split` and `verify`, as pure functions of (request, record, state, now).
//!
//! Nothing here touches PAM, files or the clock: the PAM layer gathers the inputs, calls these
//! functions and carries out what they return. That keeps every rule testable with plain
//! values and a fake clock.

use crate::config::{Reuse, Settings};
use crate::credential;
use crate::log::Reason;
use crate::otp::constant_time_eq;
use crate::record::Record;
use crate::split::{classify, Supplied};
use crate::state::{AppPasswordUse, Failure, Session, State, MAX_STEP_CLIENTS};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of code `split` kept for `verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// A TOTP code.
    Totp,
    /// A one-time recovery code.
    Recovery,
}

/// What `split` does with the supplied string.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitDecision {
    /// No record: hand the whole string on untouched (PAM_IGNORE).
    NoMfa,
    /// The first `password_len` bytes are the password, the rest is the code to keep.
    Code {
        /// Length of the password part.
        password_len: usize,
        /// What the rest is.
        kind: CodeKind,
    },
    /// The whole string is this app password, valid here and now: the login succeeds
    /// without the password module.
    AppPassword {
        /// The app password's name.
        name: String,
    },
    /// Refuse the login.
    Deny(Reason),
}

/// What `split` is asked.
#[derive(Clone, Copy, Debug)]
pub struct SplitRequest<'a> {
    /// The string the client sent.
    pub supplied: &'a [u8],
    /// PAM_SERVICE (app passwords may be limited to some services).
    pub service: &'a str,
    /// PAM_RHOST (app passwords may be limited to some client addresses).
    pub client: &'a str,
    /// Unix time (app passwords may expire).
    pub now: u64,
}

/// Decides `split` for a login whose record lookup gave `record` (`None`: no record).
pub fn decide_split(
    record: Option<&Record>,
    request: SplitRequest<'_>,
    settings: &Settings,
) -> SplitDecision {
    let Some(record) = record else {
        return if settings.require {
            SplitDecision::Deny(Reason::MfaRequired)
        } else {
            SplitDecision::NoMfa
        };
    };
    match classify(request.supplied, record.digits as usize) {
        Supplied::Totp(parts) => SplitDecision::Code {
            password_len: parts.password.len(),
            kind: CodeKind::Totp,
        },
        Supplied::Recovery(parts) => SplitDecision::Code {
            password_len: parts.password.len(),
            kind: CodeKind::Recovery,
        },
        Supplied::AppPassword(letters) => check_app_password(record, &letters, request),
        Supplied::NoCode => SplitDecision::Deny(Reason::NoCode),
    }
}

fn check_app_password(record: &Record, letters: &[u8], request: SplitRequest<'_>) -> SplitDecision {
    let Some(app) = record
        .app_passwords
        .iter()
        .find(|a| credential::verify(&a.hash, letters))
    else {
        return SplitDecision::Deny(Reason::BadAppPassword);
    };
    if app.expires.is_some_and(|expires| request.now >= expires) {
        return SplitDecision::Deny(Reason::AppPasswordExpired);
    }
    if !app.services.is_empty() && !app.services.iter().any(|s| s == request.service) {
        return SplitDecision::Deny(Reason::AppPasswordWrongService);
    }
    if !app.from.is_empty() && !app.from.iter().any(|a| same_address(a, request.client)) {
        return SplitDecision::Deny(Reason::AppPasswordWrongClient);
    }
    SplitDecision::AppPassword {
        name: app.name.clone(),
    }
}

/// Whether `allowed` (an IP address from a record) and `client` (PAM_RHOST) name one address:
/// compared as addresses, so `::ffff:127.0.0.1` is `127.0.0.1`; a client that is not an
/// address (a host name, empty) matches nothing.
fn same_address(allowed: &str, client: &str) -> bool {
    fn canonical(text: &str) -> Option<std::net::IpAddr> {
        let ip: std::net::IpAddr = text.trim().parse().ok()?;
        Some(ip.to_canonical())
    }
    matches!((canonical(allowed), canonical(client)), (Some(a), Some(c)) if a == c)
}

/// Records the use of app password `name` of `record` in the state (repairing a rebuilt state
/// first, see [`repair_rebuilt`]); returns whether the state changed.
pub fn record_app_password_use(
    record: &Record,
    state: &mut State,
    name: &str,
    client: &str,
    now: u64,
    settings: &Settings,
) -> bool {
    let repaired = repair_rebuilt(state, record, now, settings);
    let used = AppPasswordUse {
        name: name.to_string(),
        at: now,
        client: client.to_string(),
    };
    let noted = match state.app_password_uses.iter_mut().find(|u| u.name == name) {
        Some(u) if *u == used => false,
        Some(u) => {
            *u = used;
            true
        }
        None => {
            state.app_password_uses.push(used);
            true
        }
    };
    repaired || noted
}

/// Repairs a state that the store rebuilt ([`State::rebuilt`]) before anything is decided on
/// it; returns whether it did (a sound state is left alone). Every decision that writes the
/// state calls it first ([`decide_verify`], [`record_app_password_use`]; the command's record
/// changes too), and the store refuses to write a state still marked rebuilt.
///
/// A rebuilt state has lost what it knew of one-time uses, so the repair assumes the worst of
/// what it cannot know:
/// - every recovery code of `record` counts as used: which of them were used is lost, so all
///   are refused until the owner or the admin issues a new set (`mailmfa recovery-codes`,
///   whose codes have new ids and work at once);
/// - the last accepted step becomes the highest step valid now, `step(now) + window` (or the
///   one already there, if higher), used by no client: no code valid when the state was
///   rebuilt is accepted again, from any client (the owner's next login needs a code of a
///   later step, at most `window + 1` periods away);
/// - `reuse_for` sessions are dropped, for the same reason.
///
/// Failures, app-password uses and the last success are kept as the store found them.
pub fn repair_rebuilt(state: &mut State, record: &Record, now: u64, settings: &Settings) -> bool {
    if !state.rebuilt {
        return false;
    }
    let newest = record.params().step_at(now).saturating_add(settings.window);
    state.last_step = Some(state.last_step.map_or(newest, |last| last.max(newest)));
    state.step_clients.clear();
    state.sessions.clear();
    for id in record.recovery_codes.iter().map(|h| credential::hash_id(h)) {
        if !state.used_recovery.contains(&id) {
            state.used_recovery.push(id);
        }
    }
    state.rebuilt = false;
    true
}

/// One code to check, with where and when it came from.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// The code kept by `split`.
    pub code: &'a [u8],
    /// TOTP or recovery code.
    pub kind: CodeKind,
    /// PAM_RHOST ("" when the service sets none: then no reuse is possible).
    pub client: &'a str,
    /// Unix time of the attempt.
    pub now: u64,
}

/// What `verify` decided, and whether `state` changed and must be written.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Ok`, `Reused` and `RecoveryCode` accept the login; every other reason denies it.
    pub reason: Reason,
    /// The state was changed and must be written back before the answer is given.
    pub state_changed: bool,
    /// The code was refused and counted as a new failure: it is the last of
    /// `state.failures` (what [`crate::notify::alert`] looks at).
    pub failure_added: bool,
}

impl Verdict {
    /// Whether the login is accepted.
    pub fn accepted(&self) -> bool {
        is_acceptance(self.reason)
    }
}

fn is_acceptance(reason: Reason) -> bool {
    matches!(reason, Reason::Ok | Reason::Reused | Reason::RecoveryCode)
}

/// Longest client key kept in the state; longer PAM_RHOST values (host names) are hashed, so
/// that the state stays small whatever a service passes (see `MAX_FILE_BYTES`).
pub const MAX_CLIENT_KEY: usize = 64;

/// The key a client address (PAM_RHOST) is known by, for replay, reuse and the throttle:
///
/// - an IPv4 address as it is;
/// - an IPv6 address that carries an IPv4 address, by that IPv4 address: IPv4-mapped
///   (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`, SIIT, RFC 7915), NAT64
///   (`64:ff9b::/96`, RFC 6052, and the network-specific prefixes of `nat64_prefixes`) and
///   IPv4-compatible (`::a.b.c.d`, deprecated) — behind a NAT64 each IPv4 client is its own;
/// - loopback (`::1`), unspecified (`::`) and link-local (`fe80::/10`) IPv6 addresses as the
///   whole address, with the zone they came with (`fe80::1%eth0`: the same address on another
///   interface is another host); a zone on any other address is ignored;
/// - any other IPv6 address by its /64 (one host's or one site's privacy addresses share it);
/// - anything else (a host name) as it is, or as `sha256:<128 bits>` when longer than
///   [`MAX_CLIENT_KEY`] or holding a character outside [`crate::state::is_state_text`].
pub fn client_key(rhost: &str, settings: &Settings) -> String {
    if rhost.len() > MAX_CLIENT_KEY || !crate::state::is_state_text(rhost) {
        let digest = Sha256::digest(rhost.as_bytes());
        return format!(
            "sha256:{}",
            digest[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    let (address, zone) = match rhost.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (rhost, None),
    };
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match carried_ipv4(v6, &settings.nat64_prefixes) {
            Some(v4) => v4.to_string(),
            None if v6.is_loopback() || v6.is_unspecified() || v6.is_unicast_link_local() => {
                match zone {
                    Some(zone) => format!("{v6}%{zone}"),
                    None => v6.to_string(),
                }
            }
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        // An IPv4 address is already canonical (the parser takes no other form) and takes no
        // zone; a host name is what it is.
        _ => rhost.to_string(),
    }
}

/// The IPv4 address in the last 32 bits of `v6`, when its first 96 bits say it carries one
/// (see [`client_key`]); `nat64_prefixes` are /96 prefixes with their last 32 bits zero.
fn carried_ipv4(v6: Ipv6Addr, nat64_prefixes: &[Ipv6Addr]) -> Option<Ipv4Addr> {
    const MAPPED: [u16; 6] = [0, 0, 0, 0, 0, 0xffff];
    const TRANSLATED: [u16; 6] = [0, 0, 0, 0, 0xffff, 0];
    const NAT64_WELL_KNOWN: [u16; 6] = [0x64, 0xff9b, 0, 0, 0, 0];
    const COMPATIBLE: [u16; 6] = [0; 6];
    let segments = v6.segments();
    let prefix = &segments[..6];
    let carries = prefix == MAPPED
        || prefix == TRANSLATED
        || prefix == NAT64_WELL_KNOWN
        || (prefix == COMPATIBLE && !v6.is_loopback() && !v6.is_unspecified())
        || nat64_prefixes.iter().any(|p| p.segments()[..6] == *prefix);
    let [.., a, b, c, d] = v6.octets();
    carries.then(|| Ipv4Addr::new(a, b, c, d))
}

/// Decides `verify`: throttle, reuse, refused repeats, code and replay; updates `state` in
/// place (repairing a rebuilt state first, see [`repair_rebuilt`]).
///
/// The order: a throttled client or login is refused outright; a `reuse_for` session's own
/// code is `reused`; a string already refused for this client while its failure counts
/// (`fail_interval`) is refused again without being checked against any step that could
/// still be accepted ([`refused_again`]), so that re-sending refused strings in each new step
/// buys no new guesses; only then is the code checked, and a refusal stored as a failure.
pub fn decide_verify(
    record: &Record,
    state: &mut State,
    attempt: Attempt<'_>,
    settings: &Settings,
) -> Verdict {
    let before = state.clone();
    let client = client_key(attempt.client, settings);
    let now = attempt.now;
    repair_rebuilt(state, record, now, settings);
    let oldest = now.saturating_sub(settings.fail_interval);
    state.failures.retain(|f| f.at > oldest);
    state
        .sessions
        .retain(|s| settings.reuse_for > 0 && s.at.saturating_add(settings.reuse_for) > now);

    let from_client = state.failures.iter().filter(|f| f.client == client).count();
    if from_client >= settings.max_failures as usize
        || state.failures.len() >= settings.max_failures_user as usize
    {
        return finish(Reason::Throttled, state, &before);
    }

    let code = CodeFingerprint::new(record, attempt.code);
    // `code.is` computes the fingerprint only when this client has a session (or a failure).
    let in_session = attempt.kind == CodeKind::Totp
        && !client.is_empty()
        && state
            .sessions
            .iter()
            .any(|s| s.client == client && code.is(&s.fingerprint));
    if in_session {
        return finish(Reason::Reused, state, &before);
    }
    let refused_before = state
        .failures
        .iter()
        .any(|f| f.client == client && code.is(&f.fingerprint));
    if refused_before {
        let reason = refused_again(record, state, attempt, settings);
        return finish(reason, state, &before);
    }
    let reason = match attempt.kind {
        CodeKind::Totp => check_totp(record, state, &code, &client, now, settings),
        CodeKind::Recovery => check_recovery(record, state, attempt.code, &client, now),
    };
    let failure_added = !is_acceptance(reason);
    if failure_added {
        // Not refused before (checked above): a new failure of this client.
        state.failures.push(Failure {
            client,
            at: now,
            fingerprint: code.into_string(),
        });
    }
    if state.step_clients.len() > MAX_STEP_CLIENTS {
        state.step_clients.remove(0);
    }
    if state.sessions.len() > MAX_STEP_CLIENTS {
        state.sessions.remove(0);
    }
    Verdict {
        failure_added,
        ..finish(reason, state, &before)
    }
}

/// The keyed fingerprint of an attempt's code, computed at most once (it costs a SHA-256) and
/// only when a rule needs it.
struct CodeFingerprint<'a> {
    record: &'a Record,
    code: &'a [u8],
    value: OnceCell<String>,
}

impl<'a> CodeFingerprint<'a> {
    fn new(record: &'a Record, code: &'a [u8]) -> Self {
        CodeFingerprint {
            record,
            code,
            value: OnceCell::new(),
        }
    }

    fn get(&self) -> &str {
        self.value
            .get_or_init(|| fingerprint(self.record, self.code))
    }

    /// The fingerprint, to store.
    fn into_string(self) -> String {
        self.value
            .into_inner()
            .unwrap_or_else(|| fingerprint(self.record, self.code))
    }

    /// Whether `stored` is this code's fingerprint (compared in constant time).
    fn is(&self, stored: &str) -> bool {
        constant_time_eq(stored.as_bytes(), self.get().as_bytes())
    }
}

/// The answer to a string that was refused for this client within `fail_interval`, given
/// without checking it against any step that could still be accepted: `replayed` when it is
/// the code of a step of the window already used (as its first refusal said), else `bad_code`
/// (`bad_recovery_code`). The state is not changed: the repeat counted once.
fn refused_again(
    record: &Record,
    state: &State,
    attempt: Attempt<'_>,
    settings: &Settings,
) -> Reason {
    if attempt.kind == CodeKind::Recovery {
        return Reason::BadRecoveryCode;
    }
    let params = record.params();
    let now = params.step_at(attempt.now);
    let used = state.last_step.is_some_and(|last| {
        (now.saturating_sub(settings.window)..=last.min(now.saturating_add(settings.window)))
            .any(|step| constant_time_eq(&params.code(step), attempt.code))
    });
    if used {
        Reason::Replayed
    } else {
        Reason::BadCode
    }
}

fn check_totp(
    record: &Record,
    state: &mut State,
    code: &CodeFingerprint<'_>,
    client: &str,
    now: u64,
    settings: &Settings,
) -> Reason {
    let Some(step) = record
        .params()
        .matching_step(code.code, now, settings.window)
    else {
        return Reason::BadCode;
    };
    match state.last_step {
        Some(last) if step < last => Reason::Replayed,
        Some(last) if step == last => {
            let same_client = settings.reuse == Reuse::SameClient
                && !client.is_empty()
                && state.step_clients.iter().any(|c| c == client);
            if same_client {
                Reason::Reused
            } else {
                Reason::Replayed
            }
        }
        _ => {
            state.last_step = Some(step);
            state.step_clients = vec![client.to_string()];
            note_success(state, client, now);
            if settings.reuse_for > 0 && !client.is_empty() {
                state.sessions.retain(|s| s.client != client);
                state.sessions.push(Session {
                    client: client.to_string(),
                    at: now,
                    fingerprint: code.get().to_string(),
                });
            }
            Reason::Ok
        }
    }
}

fn check_recovery(
    record: &Record,
    state: &mut State,
    code: &[u8],
    client: &str,
    now: u64,
) -> Reason {
    let letters = credential::recovery_letters(code);
    let unused = record
        .recovery_codes
        .iter()
        .find(|h| credential::verify(h, &letters))
        .map(|h| credential::hash_id(h))
        .filter(|id| !state.used_recovery.contains(id));
    match unused {
        Some(id) => {
            state.used_recovery.push(id);
            note_success(state, client, now);
            Reason::RecoveryCode
        }
        None => Reason::BadRecoveryCode,
    }
}

fn note_success(state: &mut State, client: &str, now: u64) {
    state.last_success = Some(now);
    state.last_client = Some(client.to_string());
    state.failures.retain(|f| f.client != client);
}

fn finish(reason: Reason, state: &State, before: &State) -> Verdict {
    Verdict {
        reason,
        state_changed: state != before,
        failure_added: false,
    }
}

/// A fingerprint of a code, keyed with the user's secret so that the state file (which
/// holds no secret) cannot be searched for the code: 64 bits of SHA-256(secret, label, code).
pub fn fingerprint(record: &Record, code: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(record.params().secret);
    hash.update(b"\0mailmfa code\0");
    hash.update(code);
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Algorithm;

    const NOW: u64 = 1_800_000_015;

    fn record() -> Record {
        Record::new(b"12345678901234567890".to_vec(), Algorithm::SHA1, 6, 30, 0).unwrap()
    }

    fn req(supplied: &[u8]) -> SplitRequest<'_> {
        SplitRequest {
            supplied,
            service: "imap",
            client: "192.0.2.1",
            now: NOW,
        }
    }

    fn code_at(r: &Record, t: u64) -> Vec<u8> {
        r.params().code(t / 30).to_vec()
    }

    fn verify(
        r: &Record,
        state: &mut State,
        code: &[u8],
        client: &str,
        now: u64,
        s: &Settings,
    ) -> Reason {
        decide_verify(
            r,
            state,
            Attempt {
                code,
                kind: CodeKind::Totp,
                client,
                now,
            },
            s,
        )
        .reason
    }

    #[test]
    fn split_passes_logins_without_mfa_untouched() {
        let s = Settings::default();
        assert_eq!(
            decide_split(None, req(b"password123456"), &s),
            SplitDecision::NoMfa
        );
        let required = Settings {
            require: true,
            ..Settings::default()
        };
        assert_eq!(
            decide_split(None, req(b"pw"), &required),
            SplitDecision::Deny(Reason::MfaRequired)
        );
    }

    #[test]
    fn split_needs_a_code_for_mfa_logins() {
        let r = record();
        let s = Settings::default();
        assert_eq!(
            decide_split(Some(&r), req(b"pw123456"), &s),
            SplitDecision::Code {
                password_len: 2,
                kind: CodeKind::Totp
            }
        );
        assert_eq!(
            decide_split(Some(&r), req(b"pw"), &s),
            SplitDecision::Deny(Reason::NoCode)
        );
        assert_eq!(
            decide_split(Some(&r), req(b"123456"), &s),
            SplitDecision::Deny(Reason::NoCode)
        );
    }

    #[test]
    fn right_code_previous_and_next_steps_are_accepted_within_the_window() {
        let r = record();
        let s = Settings::default();
        for delta in [-30i64, 0, 30] {
            let mut state = State::default();
            let code = code_at(&r, (NOW as i64 + delta) as u64);
            assert_eq!(
                verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
                Reason::Ok,
                "{delta}"
            );
        }
        let mut state = State::default();
        let late = code_at(&r, NOW - 60);
        assert_eq!(
            verify(&r, &mut state, &late, "10.0.0.1", NOW, &s),
            Reason::BadCode
        );
    }

    #[test]
    fn a_step_is_reused_only_by_the_same_client() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        let code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        let v = decide_verify(
            &r,
            &mut state,
            Attempt {
                code: &code,
                kind: CodeKind::Totp,
                client: "10.0.0.1",
                now: NOW + 1,
            },
            &s,
        );
        assert_eq!(
            v,
            Verdict {
                reason: Reason::Reused,
                state_changed: false,
                failure_added: false,
            }
        );
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.2", NOW + 2, &s),
            Reason::Replayed
        );
        assert_eq!(
            verify(&r, &mut state, &code, "", NOW + 2, &s),
            Reason::Replayed
        );
    }

    #[test]
    fn reuse_never_accepts_a_step_once() {
        let r = record();
        let s = Settings {
            reuse: Reuse::Never,
            ..Settings::default()
        };
        let mut state = State::default();
        let code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Replayed
        );
    }

    #[test]
    fn an_older_step_is_never_accepted_after_a_newer_one_even_if_the_clock_steps_back() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW + 30), "c", NOW, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW), "c", NOW, &s),
            Reason::Replayed
        );
        // Clock set back ten minutes: the codes of that time are old steps.
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW - 600), "c", NOW - 600, &s),
            Reason::Replayed
        );
    }

    #[test]
    fn throttle_counts_distinct_failures_per_client() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        for _ in 0..10 {
            assert_eq!(
                verify(&r, &mut state, b"000000", "c1", NOW, &s),
                Reason::BadCode
            );
        }
        assert_eq!(state.failures.len(), 1, "the same wrong string counts once");
        for (i, code) in [b"000001", b"000002", b"000003", b"000004"]
            .iter()
            .enumerate()
        {
            assert_eq!(
                verify(&r, &mut state, *code, "c1", NOW + i as u64, &s),
                Reason::BadCode
            );
        }
        let right = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &right, "c1", NOW + 5, &s),
            Reason::Throttled
        );
        assert_eq!(
            verify(&r, &mut state, &right, "c2", NOW + 5, &s),
            Reason::Ok,
            "other clients still get in"
        );
        // Once the failures are older than fail_interval, c1 gets in again.
        let later = NOW + s.fail_interval + 10;
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, later), "c1", later, &s),
            Reason::Ok
        );
    }

    #[test]
    fn throttle_per_user_stops_all_clients() {
        let r = record();
        let s = Settings {
            max_failures_user: 3,
            ..Settings::default()
        };
        let mut state = State::default();
        for i in 0..3u64 {
            verify(&r, &mut state, b"999999", &format!("c{i}"), NOW, &s);
        }
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW), "c9", NOW, &s),
            Reason::Throttled
        );
    }

    #[test]
    fn success_clears_the_clients_failures() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        verify(&r, &mut state, b"000000", "c1", NOW, &s);
        verify(&r, &mut state, b"000000", "c2", NOW, &s);
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW), "c1", NOW, &s),
            Reason::Ok
        );
        assert_eq!(state.failures.len(), 1);
        assert_eq!(state.failures[0].client, "c2");
    }

    #[test]
    fn state_never_holds_the_code() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        verify(&r, &mut state, b"123456", "c1", NOW, &s);
        assert!(!state.to_toml().contains("123456"));
    }

    fn with_app_password(services: &[&str], expires: Option<u64>) -> Record {
        let mut r = record();
        r.app_passwords.push(crate::record::AppPassword {
            name: "phone".into(),
            hash: credential::hash(b"abcdefghijklmnopqrst", &[1; 16]),
            services: services.iter().map(|s| s.to_string()).collect(),
            created: 0,
            expires,
            from: Vec::new(),
        });
        r
    }

    #[test]
    fn an_app_password_bound_to_addresses_works_only_from_them() {
        let s = Settings::default();
        let mut r = with_app_password(&[], None);
        r.app_passwords[0].from = vec!["127.0.0.1".into(), "2001:db8::1".into()];
        let from = |client| SplitRequest {
            supplied: b"abcdefghijklmnopqrst",
            service: "imap",
            client,
            now: NOW,
        };
        let name = SplitDecision::AppPassword {
            name: "phone".into(),
        };
        for client in ["127.0.0.1", "::ffff:127.0.0.1", "2001:db8:0::1"] {
            assert_eq!(decide_split(Some(&r), from(client), &s), name, "{client}");
        }
        for client in ["127.0.0.2", "", "localhost", "2001:db8::2"] {
            assert_eq!(
                decide_split(Some(&r), from(client), &s),
                SplitDecision::Deny(Reason::AppPasswordWrongClient),
                "{client:?}"
            );
        }
    }

    #[test]
    fn app_passwords_work_only_for_their_services_and_until_they_expire() {
        let s = Settings::default();
        let r = with_app_password(&["imap"], Some(NOW + 10));
        let name = SplitDecision::AppPassword {
            name: "phone".into(),
        };
        assert_eq!(
            decide_split(Some(&r), req(b"abcde-fghij-klmno-pqrst"), &s),
            name
        );
        assert_eq!(
            decide_split(Some(&r), req(b"ABCDEFGHIJKLMNOPQRST"), &s),
            name
        );
        assert_eq!(
            decide_split(Some(&r), req(b"abcde-fghij-klmno-pqrss"), &s),
            SplitDecision::Deny(Reason::BadAppPassword)
        );
        let smtp = SplitRequest {
            supplied: b"abcdefghijklmnopqrst",
            service: "smtp",
            client: "192.0.2.1",
            now: NOW,
        };
        assert_eq!(
            decide_split(Some(&r), smtp, &s),
            SplitDecision::Deny(Reason::AppPasswordWrongService)
        );
        let later = SplitRequest {
            supplied: b"abcdefghijklmnopqrst",
            service: "imap",
            client: "192.0.2.1",
            now: NOW + 10,
        };
        assert_eq!(
            decide_split(Some(&r), later, &s),
            SplitDecision::Deny(Reason::AppPasswordExpired)
        );
    }

    #[test]
    fn an_app_password_client_reconnects_all_day() {
        // A day of reconnects every 5 minutes on a fake clock: always accepted, use recorded.
        let s = Settings::default();
        let r = with_app_password(&[], None);
        let mut state = State::default();
        for i in 0..288u64 {
            let now = NOW + i * 300;
            let request = SplitRequest {
                supplied: b"abcdefghijklmnopqrst",
                service: "smtp",
                client: "192.0.2.1",
                now,
            };
            assert_eq!(
                decide_split(Some(&r), request, &s),
                SplitDecision::AppPassword {
                    name: "phone".into()
                }
            );
            assert!(record_app_password_use(
                &r, &mut state, "phone", "10.0.0.1", now, &s
            ));
        }
        assert_eq!(state.app_password_uses[0].at, NOW + 287 * 300);
    }

    #[test]
    fn a_failure_counts_for_exactly_fail_interval_seconds() {
        let r = record();
        let s = Settings {
            max_failures: 1,
            ..Settings::default()
        };
        let later = NOW + s.fail_interval;
        let mut state = State::default();
        assert_eq!(
            verify(&r, &mut state, b"000000", "c1", NOW, &s),
            Reason::BadCode
        );
        let mut still = state.clone();
        assert_eq!(
            verify(&r, &mut still, &code_at(&r, later - 1), "c1", later - 1, &s),
            Reason::Throttled
        );
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, later), "c1", later, &s),
            Reason::Ok,
            "a failure fail_interval seconds old no longer counts"
        );
    }

    #[test]
    fn a_reuse_for_session_lasts_exactly_reuse_for_seconds() {
        let r = record();
        let s = Settings {
            reuse_for: 3600,
            ..Settings::default()
        };
        let code = code_at(&r, NOW);
        let mut state = State::default();
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        let mut before_end = state.clone();
        assert_eq!(
            verify(&r, &mut before_end, &code, "10.0.0.1", NOW + 3599, &s),
            Reason::Reused
        );
        assert_ne!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW + 3600, &s),
            Reason::Reused,
            "the session ends reuse_for seconds after the first use"
        );
    }

    #[test]
    fn without_reuse_for_no_stored_session_is_honoured_even_one_dated_later() {
        // reuse_for turned off after sessions were stored, and the clock stepped back: the
        // stored session must not let the code in as `reused`.
        let r = record();
        let s = Settings::default();
        assert_eq!(s.reuse_for, 0);
        let code = code_at(&r, NOW);
        let mut state = State {
            sessions: vec![Session {
                client: "10.0.0.1".into(),
                at: NOW + 100,
                fingerprint: fingerprint(&r, &code),
            }],
            ..State::default()
        };
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        assert!(state.sessions.is_empty());
    }

    #[test]
    fn the_clients_of_a_step_and_the_sessions_are_capped_at_max_step_clients() {
        let r = record();
        let s = Settings {
            reuse_for: 3600,
            ..Settings::default()
        };
        for n in [MAX_STEP_CLIENTS - 1, MAX_STEP_CLIENTS, MAX_STEP_CLIENTS + 1] {
            let mut state = State {
                step_clients: (0..n).map(|i| format!("10.1.0.{i}")).collect(),
                sessions: (0..n)
                    .map(|i| Session {
                        client: format!("10.2.0.{i}"),
                        at: NOW,
                        fingerprint: "0000000000000000".into(),
                    })
                    .collect(),
                ..State::default()
            };
            // A wrong code goes the whole way through the decision, to the caps.
            assert_eq!(
                verify(&r, &mut state, b"000000", "c9", NOW, &s),
                Reason::BadCode
            );
            let capped = n.min(MAX_STEP_CLIENTS);
            assert_eq!(state.step_clients.len(), capped, "{n} step clients");
            assert_eq!(state.sessions.len(), capped, "{n} sessions");
        }
    }

    #[test]
    fn client_keys_keep_names_up_to_the_limit_and_hash_longer_ones() {
        let s = Settings::default();
        let at_limit = format!("{}.example", "h".repeat(MAX_CLIENT_KEY - 8));
        assert_eq!(at_limit.len(), MAX_CLIENT_KEY);
        assert_eq!(client_key(&at_limit, &s), at_limit);
        let longer = format!("h{at_limit}");
        assert!(client_key(&longer, &s).starts_with("sha256:"));
        assert_eq!(client_key("192.0.2.7", &s), "192.0.2.7");
        // IPv4 takes no zone: such a string is not an address and is kept whole.
        assert_eq!(client_key("192.0.2.7%eth0", &s), "192.0.2.7%eth0");
    }

    #[test]
    fn an_app_password_use_already_recorded_leaves_the_state_unchanged() {
        // The module writes the state only when this says it changed: the same use twice in
        // one second (a client's parallel connections) is one write.
        let s = Settings::default();
        let r = with_app_password(&[], None);
        let mut state = State::default();
        assert!(record_app_password_use(
            &r, &mut state, "phone", "10.0.0.1", NOW, &s
        ));
        let before = state.clone();
        assert!(!record_app_password_use(
            &r, &mut state, "phone", "10.0.0.1", NOW, &s
        ));
        assert_eq!(state, before);
        assert!(record_app_password_use(
            &r, &mut state, "phone", "10.0.0.2", NOW, &s
        ));
        assert_eq!(state.app_password_uses.len(), 1);
        assert_eq!(state.app_password_uses[0].client, "10.0.0.2");
    }

    #[test]
    fn reuse_for_accepts_the_same_code_from_the_same_client_for_its_duration() {
        let r = record();
        let s = Settings {
            reuse_for: 8 * 3600,
            ..Settings::default()
        };
        let mut state = State::default();
        let code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        // Reconnects every 2 minutes for 8 hours, long after the code's 30 s.
        for i in 1..240u64 {
            assert_eq!(
                verify(&r, &mut state, &code, "10.0.0.1", NOW + i * 120, &s),
                Reason::Reused,
                "{i}"
            );
            assert_eq!(
                verify(&r, &mut state, &code, "10.0.0.2", NOW + i * 120, &s),
                Reason::BadCode
            );
        }
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW + 8 * 3600 + 1, &s),
            Reason::BadCode
        );
    }

    #[test]
    fn reuse_for_treats_an_ipv6_64_as_one_client_and_a_new_code_starts_a_new_period() {
        let r = record();
        let s = Settings {
            reuse_for: 3600,
            ..Settings::default()
        };
        let mut state = State::default();
        let first = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &first, "2001:db8:1:2::10", NOW, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(
                &r,
                &mut state,
                &first,
                "2001:db8:1:2:aaaa::1",
                NOW + 600,
                &s
            ),
            Reason::Reused
        );
        assert_eq!(
            verify(&r, &mut state, &first, "2001:db8:1:3::10", NOW + 600, &s),
            Reason::BadCode
        );
        let second = code_at(&r, NOW + 3000);
        assert_eq!(
            verify(&r, &mut state, &second, "2001:db8:1:2::10", NOW + 3000, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(&r, &mut state, &first, "2001:db8:1:2::10", NOW + 3010, &s),
            Reason::BadCode
        );
        assert_eq!(
            verify(&r, &mut state, &second, "2001:db8:1:2::10", NOW + 6500, &s),
            Reason::Reused
        );
    }

    #[test]
    fn a_recovery_code_works_once() {
        let mut r = record();
        r.recovery_codes
            .push(credential::hash(b"abcdefghijkl", &[2; 16]));
        let s = Settings::default();
        let mut state = State::default();
        let attempt = |now| Attempt {
            code: b"abcd-efgh-ijkl",
            kind: CodeKind::Recovery,
            client: "c",
            now,
        };
        assert_eq!(
            decide_verify(&r, &mut state, attempt(NOW), &s).reason,
            Reason::RecoveryCode
        );
        assert_eq!(
            decide_verify(&r, &mut state, attempt(NOW + 1), &s).reason,
            Reason::BadRecoveryCode
        );
        let wrong = Attempt {
            code: b"abcd-efgh-ijkk",
            ..attempt(NOW)
        };
        assert_eq!(
            decide_verify(&r, &mut state, wrong, &s).reason,
            Reason::BadRecoveryCode
        );
        assert!(!state.to_toml().contains("abcd"));
    }

    fn with_recovery_codes(codes: &[&[u8]]) -> Record {
        let mut r = record();
        for (salt, code) in (1u8..).zip(codes) {
            r.recovery_codes.push(credential::hash(code, &[salt; 16]));
        }
        r
    }

    fn recovery(code: &[u8], now: u64) -> Attempt<'_> {
        Attempt {
            code,
            kind: CodeKind::Recovery,
            client: "c",
            now,
        }
    }

    #[test]
    fn repair_leaves_a_sound_state_alone() {
        let r = with_recovery_codes(&[b"abcdefghijkl"]);
        let s = Settings::default();
        let mut state = State {
            last_step: Some(3),
            step_clients: vec!["c".into()],
            ..State::default()
        };
        let before = state.clone();
        assert!(!repair_rebuilt(&mut state, &r, NOW, &s));
        assert_eq!(state, before);
    }

    #[test]
    fn a_rebuilt_state_counts_every_recovery_code_of_the_record_as_used() {
        let r = with_recovery_codes(&[b"abcdefghijkl", b"mnopqrstuvwx"]);
        let s = Settings::default();
        let mut state = State::rebuilt_empty();
        let v = decide_verify(&r, &mut state, recovery(b"abcd-efgh-ijkl", NOW), &s);
        assert_eq!(v.reason, Reason::BadRecoveryCode);
        assert!(v.state_changed, "the repair is a change to write");
        assert!(!state.rebuilt);
        let ids: Vec<String> = r
            .recovery_codes
            .iter()
            .map(|h| credential::hash_id(h))
            .collect();
        assert_eq!(state.used_recovery, ids);
        assert_eq!(
            decide_verify(&r, &mut state, recovery(b"mnop-qrst-uvwx", NOW), &s).reason,
            Reason::BadRecoveryCode
        );
        // A new set (new hashes, new ids) works at once, each code once.
        let mut renewed = r.clone();
        renewed.recovery_codes = vec![credential::hash(b"zyxwvutsrqpo", &[7; 16])];
        let code = b"zyxw-vuts-rqpo";
        assert_eq!(
            decide_verify(&renewed, &mut state, recovery(code, NOW + 1), &s).reason,
            Reason::RecoveryCode
        );
        assert_eq!(
            decide_verify(&renewed, &mut state, recovery(code, NOW + 2), &s).reason,
            Reason::BadRecoveryCode
        );
    }

    #[test]
    fn a_rebuilt_state_accepts_no_code_valid_at_the_rebuild_from_any_client() {
        let r = record();
        let s = Settings::default();
        let step = r.params().step_at(NOW);
        let mut state = State::rebuilt_empty();
        let now_code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &now_code, "10.0.0.1", NOW, &s),
            Reason::Replayed
        );
        assert_eq!(state.last_step, Some(step + s.window));
        assert!(state.step_clients.is_empty());
        for (code, client) in [
            (code_at(&r, NOW), "10.0.0.1"),
            (code_at(&r, NOW - 30), "10.0.0.2"),
            (code_at(&r, NOW + 30), "10.0.0.2"),
            (code_at(&r, NOW + 30), ""),
        ] {
            assert_eq!(
                verify(&r, &mut state, &code, client, NOW + 1, &s),
                Reason::Replayed
            );
        }
        // The next period's code was valid at the rebuild too; the one after is new.
        assert_eq!(
            verify(
                &r,
                &mut state,
                &code_at(&r, NOW + 30),
                "10.0.0.1",
                NOW + 30,
                &s
            ),
            Reason::Replayed
        );
        assert_eq!(
            verify(
                &r,
                &mut state,
                &code_at(&r, NOW + 60),
                "10.0.0.1",
                NOW + 60,
                &s
            ),
            Reason::Ok
        );
    }

    #[test]
    fn repair_follows_the_window_and_the_period_and_keeps_a_higher_step() {
        let r = Record::new(b"12345678901234567890".to_vec(), Algorithm::SHA1, 6, 60, 0).unwrap();
        let s = Settings {
            window: 3,
            ..Settings::default()
        };
        let mut state = State::rebuilt_empty();
        assert!(repair_rebuilt(&mut state, &r, NOW, &s));
        assert_eq!(state.last_step, Some(NOW / 60 + 3));
        let mut higher = State {
            last_step: Some(NOW / 60 + 100),
            step_clients: vec!["c".into()],
            sessions: vec![Session {
                client: "c".into(),
                at: NOW,
                fingerprint: "f".into(),
            }],
            failures: vec![Failure {
                client: "c".into(),
                at: NOW,
                fingerprint: "f".into(),
            }],
            rebuilt: true,
            ..State::default()
        };
        assert!(repair_rebuilt(&mut higher, &r, NOW, &s));
        assert_eq!(higher.last_step, Some(NOW / 60 + 100));
        assert!(higher.step_clients.is_empty() && higher.sessions.is_empty());
        assert_eq!(higher.failures.len(), 1, "failures only deny: kept");
        assert!(!repair_rebuilt(&mut higher, &r, NOW, &s), "once is enough");
    }

    #[test]
    fn an_app_password_use_repairs_a_rebuilt_state() {
        let mut r = with_app_password(&[], None);
        r.recovery_codes
            .push(credential::hash(b"abcdefghijkl", &[2; 16]));
        let s = Settings::default();
        let mut state = State::rebuilt_empty();
        assert!(record_app_password_use(
            &r, &mut state, "phone", "10.0.0.1", NOW, &s
        ));
        assert!(!state.rebuilt);
        assert_eq!(state.used_recovery.len(), 1);
        assert_eq!(state.last_step, Some(r.params().step_at(NOW) + s.window));
        assert_eq!(state.app_password_uses.len(), 1);
    }

    #[test]
    fn a_refused_code_stays_refused_for_its_client_while_its_failure_counts() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        // The code of five steps ahead: wrong now, right in 150 s.
        let later = code_at(&r, NOW + 150);
        assert_eq!(
            verify(&r, &mut state, &later, "c1", NOW, &s),
            Reason::BadCode
        );
        let v = decide_verify(
            &r,
            &mut state,
            Attempt {
                code: &later,
                kind: CodeKind::Totp,
                client: "c1",
                now: NOW + 150,
            },
            &s,
        );
        assert_eq!(
            v,
            Verdict {
                reason: Reason::BadCode,
                state_changed: false,
                failure_added: false,
            },
            "not checked against the new step: refused, counted once"
        );
        assert_eq!(
            verify(&r, &mut state, &later, "c2", NOW + 150, &s),
            Reason::Ok,
            "another client's string is its own"
        );
        // Once the failure has aged out, the string is checked again (and counts again).
        let aged = NOW + s.fail_interval + 30;
        let then = code_at(&r, aged);
        assert_eq!(
            verify(&r, &mut state, &then, "c3", aged - s.fail_interval + 1, &s),
            Reason::BadCode
        );
        assert_eq!(
            verify(&r, &mut state, &then, "c3", aged, &s),
            Reason::BadCode
        );
        assert_eq!(
            verify(&r, &mut state, &then, "c3", aged + 2, &s),
            Reason::Ok
        );
    }

    #[test]
    fn a_refused_repeat_of_a_used_code_is_still_replayed() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        let code = code_at(&r, NOW);
        assert_eq!(verify(&r, &mut state, &code, "c1", NOW, &s), Reason::Ok);
        assert_eq!(
            verify(&r, &mut state, &code, "c2", NOW, &s),
            Reason::Replayed
        );
        let failures = state.failures.clone();
        assert_eq!(
            verify(&r, &mut state, &code, "c2", NOW + 1, &s),
            Reason::Replayed
        );
        assert_eq!(state.failures, failures, "the repeat counts once");
        // Out of the window the repeat is a bad code, as a first try would be.
        assert_eq!(
            verify(&r, &mut state, &code, "c2", NOW + 90, &s),
            Reason::BadCode
        );
    }

    #[test]
    fn a_refused_recovery_string_is_refused_again_without_a_check() {
        let mut r = record();
        let s = Settings::default();
        let mut state = State::default();
        let attempt = |client, now| Attempt {
            code: b"abcd-efgh-ijkl",
            kind: CodeKind::Recovery,
            client,
            now,
        };
        assert_eq!(
            decide_verify(&r, &mut state, attempt("c1", NOW), &s).reason,
            Reason::BadRecoveryCode
        );
        // The string becomes one of the login's recovery codes: still refused for c1.
        r.recovery_codes
            .push(credential::hash(b"abcdefghijkl", &[2; 16]));
        let v = decide_verify(&r, &mut state, attempt("c1", NOW + 1), &s);
        assert_eq!(v.reason, Reason::BadRecoveryCode);
        assert!(!v.state_changed);
        assert_eq!(
            decide_verify(&r, &mut state, attempt("c2", NOW + 1), &s).reason,
            Reason::RecoveryCode
        );
    }

    #[test]
    fn a_sessions_own_code_is_reused_before_the_refused_repeat_rule() {
        let r = record();
        let s = Settings {
            reuse_for: 3600,
            ..Settings::default()
        };
        let code = code_at(&r, NOW);
        let fingerprint = fingerprint(&r, &code);
        let mut state = State {
            sessions: vec![Session {
                client: "c1".into(),
                at: NOW,
                fingerprint: fingerprint.clone(),
            }],
            failures: vec![Failure {
                client: "c1".into(),
                at: NOW + 100,
                fingerprint,
            }],
            ..State::default()
        };
        assert_eq!(
            verify(&r, &mut state, &code, "c1", NOW + 200, &s),
            Reason::Reused
        );
    }

    #[test]
    fn client_keys() {
        let s = Settings::default();
        let key = |rhost: &str| client_key(rhost, &s);
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8::1"), "2001:db8:0:0::/64");
        assert_eq!(key("2001:db8:0:0:ffff::1"), "2001:db8:0:0::/64");
        assert_eq!(key(""), "");
        assert_eq!(key("mail.example.net"), "mail.example.net");
        let long = "h".repeat(300);
        assert_eq!(key(&long).len(), "sha256:".len() + 32);
        assert_eq!(key(&long), key(&long));
    }

    #[test]
    fn ipv6_addresses_that_carry_an_ipv4_address_are_that_ipv4_client() {
        let s = Settings::default();
        let key = |rhost: &str| client_key(rhost, &s);
        for rhost in [
            "64:ff9b::c633:6407",       // NAT64, well-known prefix (RFC 6052)
            "64:ff9b::198.51.100.7",    // the same, written with a dotted quad
            "::ffff:0:c633:6407",       // SIIT, IPv4-translated (RFC 7915)
            "::ffff:c633:6407",         // IPv4-mapped
            "::c633:6407",              // IPv4-compatible (deprecated)
            "::ffff:198.51.100.7%eth0", // a zone changes nothing here
            "198.51.100.7",
        ] {
            assert_eq!(key(rhost), "198.51.100.7", "{rhost}");
        }
        assert_eq!(key("64:ff9b::c633:6408"), "198.51.100.8");
        // Network-specific NAT64 prefixes apply only when configured.
        assert_eq!(key("2001:db8:64::c633:6407"), "2001:db8:64:0::/64");
        let configured = Settings {
            nat64_prefixes: vec!["2001:db8:64::".parse().unwrap()],
            ..Settings::default()
        };
        assert_eq!(
            client_key("2001:db8:64::c633:6407", &configured),
            "198.51.100.7"
        );
        assert_eq!(
            client_key("2001:db8:64:0:1::c633:6407", &configured),
            "2001:db8:64:0::/64",
            "outside the /96"
        );
        assert_eq!(
            client_key("64:ff9b::c633:6407", &configured),
            "198.51.100.7",
            "the well-known prefix always applies"
        );
        // 64:ff9b:1::/48 (RFC 8215, local use) is a network-specific prefix: configure it.
        assert_eq!(key("64:ff9b:1::c633:6407"), "64:ff9b:1:0::/64");
    }

    #[test]
    fn loopback_unspecified_and_link_local_addresses_are_keyed_whole() {
        let s = Settings::default();
        let key = |rhost: &str| client_key(rhost, &s);
        assert_eq!(key("::1"), "::1");
        assert_eq!(key("::"), "::");
        assert_eq!(key("0:0:0:0:0:0:0:1"), "::1");
        assert_eq!(key("fe80::1"), "fe80::1");
        assert_eq!(key("FE80:0::1"), "fe80::1");
        assert_eq!(key("fe80::2"), "fe80::2");
        assert_eq!(key("febf::1"), "febf::1", "the last /16 of fe80::/10");
        assert_eq!(key("fec0::1"), "fec0:0:0:0::/64", "not link-local");
        // PAM_RHOST may carry a zone: kept for link-local (another interface, another host).
        assert_eq!(key("fe80::1%eth0"), "fe80::1%eth0");
        assert_eq!(key("fe80::1%eth1"), "fe80::1%eth1");
        assert_eq!(key("::1%lo"), "::1%lo");
        assert_eq!(key("2001:db8::1%eth0"), "2001:db8:0:0::/64", "zone ignored");
        assert!(key("fe80::1%eth 0").starts_with("sha256:"));
    }
}
