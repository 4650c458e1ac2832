//! The per-user state format (`<state_dir>/<login>.state`): what the module remembers between
//! logins — the last accepted step and its clients, the last success, recent failed codes.
//!
//! Written only by the module (and removed by `mailmfa disable`). Holds no secret: failed
//! codes are kept as keyed fingerprints (see [`crate::auth`]). A state file that does not
//! parse is logged and rebuilt from empty; that can reopen at most the current code's
//! validity, never a secret.
//!
//! ```toml
//! version = 1
//! last_step = 59933774          # highest time step accepted so far
//! step_clients = ["127.0.0.1"]  # client addresses that used last_step
//! last_success = 1798013213
//! last_client = "127.0.0.1"
//!
//! used_recovery = ["3f1a09c2d4e5b6a7"]   # ids of recovery codes already used
//!
//! [[sessions]]                  # reuse_for: the code each client address may reuse
//! client = "2001:db8:1:2::/64"
//! at = 1798013213               # first use
//! fingerprint = "5d0c4be31f9a2e77"
//!
//! [[app_password_uses]]         # last use of each app password
//! name = "thunderbird"
//! at = 1798013213
//! client = "192.0.2.7"
//!
//! [[failures]]                  # failed codes after a right password, within fail_interval
//! client = "192.0.2.7"
//! at = 1798013100
//! fingerprint = "9f2c61d4a8e0b7c3"
//! ```

use serde::{Deserialize, Serialize};

/// The only state format version this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Most client addresses remembered for one step; beyond it the oldest are dropped, which
/// can only refuse a reuse, never allow one.
pub const MAX_STEP_CLIENTS: usize = 64;

/// One user's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version.
    #[serde(default = "current_version")]
    pub version: u32,
    /// Highest time step accepted so far; no lower step is ever accepted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
    /// Client addresses that logged in with `last_step`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_clients: Vec<String>,
    /// Unix time of the last successful code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    /// Client address of the last successful code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_client: Option<String>,
    /// Ids ([`crate::credential::hash_id`]) of recovery codes already used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_recovery: Vec<String>,
    /// `reuse_for` sessions: which code each client address may reuse, since when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<Session>,
    /// Last use of each app password.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_password_uses: Vec<AppPasswordUse>,
    /// Failed codes still inside `fail_interval`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

/// A client's right to reuse the code it logged in with (`reuse_for`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Client key: the IPv4 address, or the /64 of an IPv6 address.
    pub client: String,
    /// Unix time of the code's first use.
    pub at: u64,
    /// Keyed fingerprint of the code.
    pub fingerprint: String,
}

/// When and from where an app password was last used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPasswordUse {
    /// The app password's name.
    pub name: String,
    /// Unix time of the last use.
    pub at: u64,
    /// Client address of the last use.
    pub client: String,
}

/// One failed code (sent with a right password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Client address ("" when the service gives none).
    pub client: String,
    /// Unix time of the failure.
    pub at: u64,
    /// Keyed fingerprint of the failed code: the same wrong string counts once.
    pub fingerprint: String,
}

fn current_version() -> u32 {
    STATE_VERSION
}

impl Default for State {
    /// The state of a user who never logged in: nothing accepted, nothing failed.
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            last_step: None,
            step_clients: Vec::new(),
            last_success: None,
            last_client: None,
            used_recovery: Vec::new(),
            sessions: Vec::new(),
            app_password_uses: Vec::new(),
            failures: Vec::new(),
        }
    }
}

impl State {
    /// Parses state text; `Err` means "damaged": the caller logs it and starts from empty.
    pub fn parse(text: &str) -> Result<State, String> {
        let state: State = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if state.version != STATE_VERSION {
            return Err(format!("state version {} is not supported", state.version));
        }
        Ok(state)
    }

    /// The state as file text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("state always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let s = State {
            version: STATE_VERSION,
            last_step: Some(7),
            step_clients: vec!["127.0.0.1".into()],
            last_success: Some(210),
            last_client: Some("127.0.0.1".into()),
            used_recovery: vec!["ab".into()],
            sessions: vec![Session {
                client: "::/64".into(),
                at: 1,
                fingerprint: "cd".into(),
            }],
            app_password_uses: vec![AppPasswordUse {
                name: "tb".into(),
                at: 2,
                client: "".into(),
            }],
            failures: vec![Failure {
                client: "::1".into(),
                at: 5,
                fingerprint: "ab".into(),
            }],
        };
        assert_eq!(State::parse(&s.to_toml()).unwrap(), s);
        assert_eq!(State::parse("").unwrap(), State::default());
    }

    #[test]
    fn damaged_state_is_an_error() {
        for text in [
            "last_step = \"x\"",
            "junk = 1",
            "version = 9",
            "last_step = 1\n[[failures]]\nat = 1",
        ] {
            assert!(State::parse(text).is_err(), "{text}");
        }
    }
}
