// One concept, the state format (its fields, reader and writer); long for its 8 tests.
//! The per-user state format (`<state_dir>/<login>.state`): what the module remembers between
//! logins — the last accepted step and its clients, the last success, recent failed codes.
//!
//! Written by the module (and by the command when it changes a record; removed by `mailmfa
//! disable`). Holds no secret: failed codes are kept as keyed fingerprints (see
//! [`crate::auth`]). What it remembers of one-time uses (used recovery codes, the last step) is
//! a security property, so a state the store cannot use is never simply started afresh: a file
//! that does not parse (also one cut short: every line the writer writes ends in a line break,
//! and `version` is always there, so an empty or truncated file is damaged), has a wrong
//! version, is unsafe or unreadable comes back as [`State::rebuilt_empty`], marked
//! [`State::rebuilt`], and the decision repairs it before anything else
//! ([`crate::auth::repair_rebuilt`]): every recovery code of the record counts as used and the
//! last step starts at "now + window". A change that marks a recovery code used is written
//! durably (see [`crate::store::Store`]).
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
    /// Format version (required: a state without it was cut short).
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
    /// Set only by a store that could not use the stored state and started this one afresh
    /// ([`crate::store::StateLoad::Rebuilt`]); never written or read. What the state knew of
    /// one-time uses is lost, so the decision repairs it first
    /// ([`crate::auth::repair_rebuilt`], which clears this mark), and the store never writes a
    /// state that still carries it.
    #[serde(skip)]
    pub rebuilt: bool,
}

/// A client's right to reuse the code it logged in with (`reuse_for`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Client key ([`crate::auth::client_key`]): an IPv4 address (also one carried in an IPv6
    /// address), the /64 of a global IPv6 address, or a whole loopback or link-local address.
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
            rebuilt: false,
        }
    }
}

impl State {
    /// The state a store starts from when the stored one is damaged or unusable: empty, and
    /// marked [`State::rebuilt`] so that the decision repairs it before it decides.
    pub fn rebuilt_empty() -> State {
        State {
            rebuilt: true,
            ..State::default()
        }
    }

    /// Parses state text; `Err` means "damaged": the caller logs it and rebuilds the state
    /// ([`State::rebuilt_empty`]).
    ///
    /// The state is read at every login, so this is a small strict reader of exactly the TOML
    /// that [`State::to_toml`] writes (a test checks both against the `toml` crate): top-level
    /// `key = value` lines, `[[table]]` blocks, integers, and strings of
    /// [`is_state_text`] characters, with a `version` line and a line break at the end (the
    /// writer always writes both, so an empty file, or one cut inside a line, is not
    /// mistaken for a state that remembers less). Anything else is "damaged".
    pub fn parse(text: &str) -> Result<State, String> {
        if !text.ends_with('\n') {
            return Err("the file does not end with a line break: it was cut short".to_string());
        }
        let mut state = State::default();
        let mut version = None;
        let mut seen: Vec<&str> = Vec::new();
        let mut table: Option<&str> = None;
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                if let Some(done) = table.take() {
                    push_table(&mut state, done, &fields)?;
                }
                fields.clear();
                table = Some(name.trim());
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("line {}: not `key = value`", n + 1))?;
            if table.is_some() {
                if fields.iter().any(|(k, _)| *k == key) {
                    return Err(format!("line {}: `{key}` given twice", n + 1));
                }
                fields.push((key, value));
                continue;
            }
            if seen.contains(&key) {
                return Err(format!("line {}: `{key}` given twice", n + 1));
            }
            seen.push(key);
            match key {
                "version" => version = Some(integer(value)?),
                "last_step" => state.last_step = Some(integer(value)?),
                "step_clients" => state.step_clients = strings(value)?,
                "last_success" => state.last_success = Some(integer(value)?),
                "last_client" => state.last_client = Some(string(value)?),
                "used_recovery" => state.used_recovery = strings(value)?,
                _ => return Err(format!("line {}: unknown key `{key}`", n + 1)),
            }
        }
        if let Some(done) = table {
            push_table(&mut state, done, &fields)?;
        }
        match version {
            None => Err("no `version` line: the file was cut short".to_string()),
            Some(v) if v != u64::from(STATE_VERSION) => {
                Err(format!("state version {v} is not supported"))
            }
            Some(_) => Ok(state),
        }
    }

    /// The state as file text (TOML).
    pub fn to_toml(&self) -> String {
        let mut out = String::with_capacity(256);
        push_number(&mut out, "version", u64::from(self.version));
        if let Some(step) = self.last_step {
            push_number(&mut out, "last_step", step);
        }
        if !self.step_clients.is_empty() {
            push_list(&mut out, "step_clients", &self.step_clients);
        }
        if let Some(at) = self.last_success {
            push_number(&mut out, "last_success", at);
        }
        if let Some(client) = &self.last_client {
            out.push_str("last_client = ");
            push_quoted(&mut out, client);
            out.push('\n');
        }
        if !self.used_recovery.is_empty() {
            push_list(&mut out, "used_recovery", &self.used_recovery);
        }
        write_tables(&mut out, &self.sessions);
        write_tables(&mut out, &self.app_password_uses);
        write_tables(&mut out, &self.failures);
        out
    }
}

/// Whether `text` may stand in a state string as it is: ASCII letters, digits and
/// `. _ : - / [ ] % @ +` (client keys, names, hex). [`crate::auth::client_key`] hashes any
/// client address that holds something else.
pub fn is_state_text(text: &str) -> bool {
    text.bytes().all(is_state_byte)
}

fn is_state_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".:_-/[]%@+".contains(&b)
}

/// Appends a string as written: quoted, with any character outside [`is_state_text`] as `?`
/// (the module never stores such strings; this keeps the file parseable whatever happens).
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        out.push(if c.is_ascii() && is_state_byte(c as u8) {
            c
        } else {
            '?'
        });
    }
    out.push('"');
}

/// Appends `key = number` and its line end.
fn push_number(out: &mut String, key: &str, value: u64) {
    use std::fmt::Write;
    let _ = writeln!(out, "{key} = {value}");
}

/// Appends `key = ["a", "b"]` and its line end.
fn push_list(out: &mut String, key: &str, items: &[String]) {
    out.push_str(key);
    out.push_str(" = [");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_quoted(out, item);
    }
    out.push_str("]\n");
}

/// One kind of `[[table]]` block. Every table of the state has the shape (string, `at`,
/// string).
trait Table: Sized {
    /// The block's name.
    const NAME: &'static str;
    /// The keys of its first and last strings.
    const KEYS: (&'static str, &'static str);
    /// Its first string, `at` and last string.
    fn fields(&self) -> (&str, u64, &str);
    /// The entry of a first string, `at` and a last string.
    fn from_fields(first: String, at: u64, last: String) -> Self;
}

/// Implements [`Table`] for a struct of the fields (FIRST, `at`, LAST), written as `[[NAME]]`.
macro_rules! table {
    ($type:ident, $name:literal, $first:ident, $last:ident) => {
        impl Table for $type {
            const NAME: &'static str = $name;
            const KEYS: (&'static str, &'static str) = (stringify!($first), stringify!($last));
            fn fields(&self) -> (&str, u64, &str) {
                (&self.$first, self.at, &self.$last)
            }
            fn from_fields($first: String, at: u64, $last: String) -> Self {
                $type { $first, at, $last }
            }
        }
    };
}

table!(Session, "sessions", client, fingerprint);
table!(AppPasswordUse, "app_password_uses", name, client);
table!(Failure, "failures", client, fingerprint);

/// Writes one `[[T::NAME]]` block per entry.
fn write_tables<T: Table>(out: &mut String, entries: &[T]) {
    let (first_key, last_key) = T::KEYS;
    for entry in entries {
        let (first, at, last) = entry.fields();
        for part in ["\n[[", T::NAME, "]]\n", first_key, " = "] {
            out.push_str(part);
        }
        push_quoted(out, first);
        out.push('\n');
        push_number(out, "at", at);
        out.push_str(last_key);
        out.push_str(" = ");
        push_quoted(out, last);
        out.push('\n');
    }
}

fn integer(value: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a whole number",
            value.chars().take(32).collect::<String>()
        ));
    }
    value
        .parse()
        .map_err(|_| "a number is too large".to_string())
}

fn string(value: &str) -> Result<String, String> {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| is_state_text(v))
        .map(str::to_string)
        .ok_or_else(|| "a string is not a plain quoted string".to_string())
}

fn strings(value: &str) -> Result<Vec<String>, String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or("a list is not `[...]`")?
        .trim();
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner
        .trim_end_matches(',')
        .split(',')
        .map(|item| string(item.trim()))
        .collect()
}

/// Adds one `[[table]]` block with its fields to `state`.
fn push_table(state: &mut State, table: &str, fields: &[(&str, &str)]) -> Result<(), String> {
    match table {
        Session::NAME => state.sessions.push(read_table(fields)?),
        AppPasswordUse::NAME => state.app_password_uses.push(read_table(fields)?),
        Failure::NAME => state.failures.push(read_table(fields)?),
        _ => return Err(format!("unknown table [[{table}]]")),
    }
    Ok(())
}

/// The entry of one `[[T::NAME]]` block: each of its three keys required once and no other.
fn read_table<T: Table>(fields: &[(&str, &str)]) -> Result<T, String> {
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("[[{}]] lacks `{key}`", T::NAME))
    };
    if fields.len() != 3 {
        return Err(format!("[[{}]] has unknown keys", T::NAME));
    }
    let (first, last) = T::KEYS;
    Ok(T::from_fields(
        string(get(first)?)?,
        integer(get("at")?)?,
        string(get(last)?)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_digits_only() {
        assert_eq!(integer("42"), Ok(42));
        for bad in ["", "+5", "-1", "4 2", "0x10", "1e3"] {
            assert!(integer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn strings_are_written_with_anything_unsafe_as_a_question_mark() {
        let quoted = |text: &str| {
            let mut out = String::new();
            push_quoted(&mut out, text);
            out
        };
        assert_eq!(quoted("10.0.0.1"), "\"10.0.0.1\"");
        assert_eq!(quoted("a\"b c\nd=é"), "\"a?b?c?d??\"");
    }
    use proptest::prelude::*;

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
            rebuilt: false,
        };
        assert_eq!(State::parse(&s.to_toml()).unwrap(), s);
        assert_eq!(State::default().to_toml(), "version = 1\n");
        assert_eq!(State::parse("version = 1\n").unwrap(), State::default());
    }

    fn text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9.:_/%@+\\[\\]-]{0,20}"
    }

    /// Any entry of a `[[table]]` block.
    fn any_entry<T: Table + std::fmt::Debug>() -> impl Strategy<Value = T> {
        (text(), any::<u64>(), text()).prop_map(|(first, at, last)| T::from_fields(first, at, last))
    }

    prop_compose! {
        fn any_state()(
            last_step in proptest::option::of(any::<u64>()),
            step_clients in proptest::collection::vec(text(), 0..4),
            last_success in proptest::option::of(any::<u64>()),
            last_client in proptest::option::of(text()),
            used_recovery in proptest::collection::vec(text(), 0..3),
            sessions in proptest::collection::vec(any_entry(), 0..3),
            app_password_uses in proptest::collection::vec(any_entry(), 0..3),
            failures in proptest::collection::vec(any_entry(), 0..4),
        ) -> State {
            State {
                last_step,
                step_clients,
                last_success,
                last_client,
                used_recovery,
                sessions,
                app_password_uses,
                failures,
                ..State::default()
            }
        }
    }

    proptest! {
        /// The hand-written reader and writer agree with the `toml` crate both ways.
        #[test]
        fn the_state_format_is_toml(state in any_state()) {
            let ours = state.to_toml();
            prop_assert_eq!(&toml::from_str::<State>(&ours).unwrap(), &state);
            prop_assert_eq!(&State::parse(&ours).unwrap(), &state);
            let theirs = toml::to_string(&state).unwrap();
            prop_assert_eq!(&State::parse(&theirs).unwrap(), &state);
        }

        /// Whatever the text (random, or a real state's with a few characters spliced in
        /// somewhere), parsing never panics and gives one of two answers: a state that reads
        /// the same through the `toml` crate and is written back to an equal state, or an
        /// error that says what is damaged.
        #[test]
        fn any_text_parses_or_is_damaged(text in prop_oneof![
            "\\PC{0,200}",
            (any_state(), any::<proptest::sample::Index>(), "\\PC{0,3}").prop_map(
                |(state, at, insert)| {
                    let mut text = state.to_toml();
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text.insert_str(at, &insert);
                    text
                }
            ),
        ]) {
            match State::parse(&text) {
                Ok(state) => {
                    prop_assert_eq!(&toml::from_str::<State>(&text).unwrap(), &state);
                    prop_assert_eq!(&State::parse(&state.to_toml()).unwrap(), &state);
                }
                Err(reason) => prop_assert!(!reason.is_empty(), "an error without a reason"),
            }
        }
    }

    #[test]
    fn damaged_state_is_an_error() {
        for body in [
            "last_step = \"x\"",
            "junk = 1",
            "version = 9",
            "last_step = 1\n[[failures]]\nat = 1",
            "last_step = -1",
            "last_step = 1\nlast_step = 2",
            "last_client = \"a b\"",
            "step_clients = [\"a\", 1]",
            "[[failures]]\nclient = \"a\"\nat = 1\nfingerprint = \"f\"\nextra = 1",
            "[[unknown]]",
            "last_step = 99999999999999999999999",
            "last_step = 1\n\0",
            "rebuilt = true",
        ] {
            let text = format!("version = 1\n{body}\n");
            assert!(State::parse(&text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_state_cut_short_is_damaged() {
        let s = State {
            last_step: Some(59_933_774),
            used_recovery: vec!["3f1a09c2d4e5b6a7".into()],
            ..State::default()
        };
        let text = s.to_toml();
        assert_eq!(State::parse(&text).unwrap(), s);
        // Every cut: inside a line (a number that would parse smaller), at a line end (lines
        // lost), and the empty file a crash can leave.
        for cut in 0..text.len() {
            assert!(State::parse(&text[..cut]).is_err() || text[..cut].ends_with('\n'));
        }
        assert!(State::parse("").is_err());
        assert!(State::parse("version = 1").is_err());
        assert!(State::parse("last_step = 5\n").is_err(), "no version line");
        assert!(State::parse(&text.replace("59933774\n", "599")).is_err());
    }

    #[test]
    fn the_rebuilt_mark_is_never_written() {
        let rebuilt = State::rebuilt_empty();
        assert!(rebuilt.rebuilt);
        assert_eq!(rebuilt.to_toml(), State::default().to_toml());
        assert!(!toml::to_string(&rebuilt).unwrap().contains("rebuilt"));
        assert!(!State::parse(&rebuilt.to_toml()).unwrap().rebuilt);
    }
}
