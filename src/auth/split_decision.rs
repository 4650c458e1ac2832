//! The `split` decision: what the `split` phase does with the string a client sent — hand it on
//! untouched (no record), keep a TOTP or recovery code for `verify`, accept an app password
//! valid here and now, or deny — and the record of an app password's use in the state.
//!
//! Not the split *rule*: how `password + code` text is cut (and an app password or recovery
//! code recognised) is `src/split.rs` ([`classify`]); this file decides what to do with what
//! the rule found.

use super::repair::repair_rebuilt;
use super::CodeKind;
use crate::config::Settings;
use crate::credential;
use crate::log::Reason;
use crate::record::Record;
use crate::split::{classify, Supplied};
use crate::state::{AppPasswordUse, State};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::{record, NOW};

    fn req(supplied: &[u8]) -> SplitRequest<'_> {
        SplitRequest {
            supplied,
            service: "imap",
            client: "192.0.2.1",
            now: NOW,
        }
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
}
