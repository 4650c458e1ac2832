//! "Password known, code wrong": when wrong codes become an alert for the owner. `verify`
//! (of the module, and of a page's code check) only runs after the password was accepted, so
//! each failure it counts is somebody with the password and without the phone — or the owner
//! mistyping. One or two mistakes are not worth a mail; the alert comes when the login's wrong
//! codes within `fail_interval` reach `alert_after` (by default `max_failures`, the point at
//! which the throttle stops that client), and again at each further `alert_after`. The
//! notifier then merges alerts to at most one mail per `alert_every`.

use super::{Kind, Notice};
use crate::auth::Verdict;
use crate::config::Settings;
use crate::log::Reason;
use crate::login::Login;
use crate::record::Record;
use crate::state::State;

/// What an alert says: the wrong codes within `fail_interval`, and whether the throttle now
/// refuses the client that typed the last one (or every client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Wrong codes counted for the login within `fail_interval`, the last one included.
    pub count: u32,
    /// The throttle refuses codes from the last failure's client (or from everyone) now.
    pub throttled: bool,
}

/// The alert due after `verify` counted a new failure (the last of `state.failures`), if one
/// is due. Called only when the verdict says `failure_added`.
pub fn after_failure(settings: &Settings, state: &State) -> Option<Alert> {
    let count = state.failures.len();
    let every = settings.notify.alert_after(settings.max_failures) as usize;
    if count == 0 || !count.is_multiple_of(every) {
        return None;
    }
    let client = &state.failures.last()?.client;
    let from_client = state
        .failures
        .iter()
        .filter(|f| &f.client == client)
        .count();
    Some(Alert {
        count: count as u32,
        throttled: from_client >= settings.max_failures as usize
            || count >= settings.max_failures_user as usize,
    })
}

/// Where a checked code came from, for the notice.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The face (`login` for the module, else the account layer's face name).
    pub face: &'a str,
    /// The PAM service of a login.
    pub service: Option<&'a str>,
    /// The client's address ("" when unknown).
    pub client: &'a str,
    /// When.
    pub now: u64,
}

/// What a `verify` decision (of the module or of a page's code check) tells the owner, given
/// the state it left: a recovery code used (and how many are left), or an alert that is due
/// ([`after_failure`]); `None` for everything else, and when the settings do not want it.
pub fn notice_of_verdict(
    settings: &Settings,
    login: &Login,
    record: &Record,
    state: &State,
    verdict: &Verdict,
    source: Source<'_>,
) -> Option<Notice> {
    let (kind, left, alert) = if verdict.reason == Reason::RecoveryCode {
        let left = crate::account::status::recovery_left(record, state) as u32;
        (Kind::RecoveryCodeUsed, Some(left), None)
    } else if verdict.failure_added {
        (Kind::CodeWrong, None, Some(after_failure(settings, state)?))
    } else {
        return None;
    };
    if !settings.notify.wants(kind) {
        return None;
    }
    let mut notice = Notice::new(kind, source.now, login, source.face);
    notice.service = source.service.map(str::to_string);
    notice.client = Some(source.client.to_string()).filter(|c| !c.is_empty());
    notice.left = left;
    notice.count = alert.map(|a| a.count);
    notice.throttled = alert.is_some_and(|a| a.throttled);
    Some(notice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Failure;

    fn state(clients: &[&str]) -> State {
        State {
            failures: clients
                .iter()
                .enumerate()
                .map(|(i, c)| Failure {
                    client: c.to_string(),
                    at: i as u64,
                    fingerprint: format!("f{i}"),
                })
                .collect(),
            ..State::default()
        }
    }

    #[test]
    fn every_alert_after_wrong_codes_by_default_the_throttle() {
        let s = Settings::default(); // max_failures 5, max_failures_user 20
        for n in 1..5 {
            assert_eq!(after_failure(&s, &state(&vec!["a"; n])), None, "{n}");
        }
        let five = after_failure(&s, &state(&["a"; 5])).unwrap();
        assert_eq!((five.count, five.throttled), (5, true));
        assert_eq!(after_failure(&s, &state(&["a"; 6])), None);
        // Spread over clients: the count is the login's, no client is throttled yet.
        let spread = after_failure(&s, &state(&["a", "b", "c", "d", "e"])).unwrap();
        assert_eq!((spread.count, spread.throttled), (5, false));
        let twenty: Vec<&str> = ["a", "b", "c", "d"].repeat(5);
        assert!(
            after_failure(&s, &state(&twenty)).unwrap().throttled,
            "the login's own limit"
        );
    }

    #[test]
    fn alert_after_sets_the_step() {
        let mut s = Settings::default();
        s.notify.alert_after = Some(2);
        assert_eq!(after_failure(&s, &state(&["a"])), None);
        let two = after_failure(&s, &state(&["a", "b"])).unwrap();
        assert_eq!((two.count, two.throttled), (2, false));
        assert_eq!(after_failure(&s, &state(&["a", "b", "a"])), None);
        assert_eq!(
            after_failure(&s, &state(&["a", "b", "a", "b"]))
                .unwrap()
                .count,
            4
        );
    }
}
