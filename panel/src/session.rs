//! Server-side sessions.
//!
//! - The cookie holds a 256-bit random id (getrandom); the table is keyed by its SHA-256, so
//!   a dump of the table (or a timing leak of the lookup) gives no usable cookie.
//! - A session ends after `idle` seconds without a request and `lifetime` seconds after it
//!   began, whichever comes first.
//! - Signing in always makes a new id (the old one, a pre-session or another login's, is
//!   dropped): no session fixation.
//! - Each session has its own CSRF token (also 256-bit random), checked in constant time.
//! - A pre-session (no login yet) carries the sign-in form's CSRF token.
//! - The table is bounded: pre-sessions and signed-in sessions each have a cap; when full,
//!   the least recently used one of that kind goes.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mailmfa::login::Login;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "mailmfa_session";
/// Most signed-in sessions kept at once.
pub const MAX_SESSIONS: usize = 10_000;
/// Most pre-sessions (sign-in forms shown) kept at once.
pub const MAX_PRE_SESSIONS: usize = 4_096;

/// A one-line notice shown on the next page (after a redirect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flash {
    /// What happened (green, `#message`).
    Message(String),
    /// What went wrong (red, `#error`).
    Error(String),
}

/// What a request's session holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The signed-in mailbox; `None` for a pre-session.
    pub login: Option<Login>,
    /// The token every form and state-changing API call must carry.
    pub csrf: String,
    /// When the session began.
    pub created: u64,
    /// When it was last used.
    pub last: u64,
    /// A notice for the next page.
    pub flash: Option<Flash>,
}

/// Why a presented id was not (or no longer) a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not known (never was, or signed out, or dropped when the table was full).
    Unknown,
    /// Ended by the idle timeout.
    Idle,
    /// Ended by the absolute lifetime.
    Lifetime,
}

/// A presented id that is not (or no longer) a session: why, and whose it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Why.
    pub why: Lookup,
    /// The mailbox of an ended signed-in session.
    pub login: Option<Login>,
}

/// The table of sessions.
pub struct Sessions {
    idle: u64,
    lifetime: u64,
    table: Mutex<HashMap<[u8; 32], Session>>,
}

/// A fresh random token: 32 bytes, URL-safe base64 (43 characters).
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(token)
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Compares two strings in time that depends on their lengths only.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// Sessions that end after `idle` seconds unused or `lifetime` seconds old.
    pub fn new(idle: u64, lifetime: u64) -> Sessions {
        Sessions {
            idle,
            lifetime,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session (for `login`, or a pre-session when `None`) at `now`; returns its id
    /// (for the cookie) and CSRF token. `old`, if given, is dropped first.
    pub fn create(
        &self,
        login: Option<Login>,
        old: Option<&str>,
        now: u64,
    ) -> Result<(String, String), getrandom::Error> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut table = self.lock();
        if let Some(old) = old {
            table.remove(&hash(old));
        }
        let pre = login.is_none();
        let cap = if pre { MAX_PRE_SESSIONS } else { MAX_SESSIONS };
        let count = table.values().filter(|s| s.login.is_none() == pre).count();
        if count >= cap {
            let (idle, lifetime) = (self.idle, self.lifetime);
            table.retain(|_, s| s.last + idle > now && s.created + lifetime > now);
            let count = table.values().filter(|s| s.login.is_none() == pre).count();
            if count >= cap {
                if let Some(victim) = table
                    .iter()
                    .filter(|(_, s)| s.login.is_none() == pre)
                    .min_by_key(|(_, s)| s.last)
                    .map(|(k, _)| *k)
                {
                    table.remove(&victim);
                }
            }
        }
        table.insert(
            hash(&id),
            Session {
                login,
                csrf: csrf.clone(),
                created: now,
                last: now,
                flash: None,
            },
        );
        Ok((id, csrf))
    }

    /// The session of `id` at `now`, marked as used (its flash taken out of the table);
    /// an ended session is removed and says why.
    pub fn get(&self, id: &str, now: u64) -> Result<Session, Ended> {
        let mut table = self.lock();
        let key = hash(id);
        let Some(session) = table.get_mut(&key) else {
            return Err(Ended {
                why: Lookup::Unknown,
                login: None,
            });
        };
        let ended = if now >= session.created + self.lifetime {
            Some(Lookup::Lifetime)
        } else if now >= session.last + self.idle {
            Some(Lookup::Idle)
        } else {
            None
        };
        if let Some(why) = ended {
            let login = table.remove(&key).and_then(|s| s.login);
            return Err(Ended { why, login });
        }
        session.last = now;
        let copy = session.clone();
        session.flash = None;
        Ok(copy)
    }

    /// Leaves a notice for the next page of `id`.
    pub fn flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.lock().get_mut(&hash(id)) {
            s.flash = Some(flash);
        }
    }

    /// Ends the session `id` (sign-out).
    pub fn remove(&self, id: &str) {
        self.lock().remove(&hash(id));
    }

    /// How many sessions (of both kinds) are kept.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// Checks a CSRF token sent with a request against the session's.
pub fn csrf_ok(session: &Session, sent: Option<&str>) -> bool {
    sent.is_some_and(|sent| same(&session.csrf, sent))
}

/// The value of our cookie in a `Cookie` header (the last one if several: none should).
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.trim().to_string())
        })
        .rfind(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `Set-Cookie` value for session `id` (an empty id with max-age 0 clears it).
pub fn set_cookie(id: &str, secure: bool) -> String {
    let mut c = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/");
    if id.is_empty() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// `response` with the `Set-Cookie` header of session `id` appended.
pub fn with_cookie(
    mut response: axum::response::Response,
    id: &str,
    secure: bool,
) -> axum::response::Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(&set_cookie(id, secure)) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Login {
        Login::parse(b"alice@example.com").unwrap()
    }

    #[test]
    fn ids_and_tokens_are_256_bit_and_distinct() {
        let s = Sessions::new(900, 28800);
        let (id1, csrf1) = s.create(Some(alice()), None, 0).unwrap();
        let (id2, csrf2) = s.create(Some(alice()), None, 0).unwrap();
        assert_eq!(id1.len(), 43);
        assert_eq!(csrf1.len(), 43);
        assert!(id1 != id2 && csrf1 != csrf2 && id1 != csrf1);
    }

    #[test]
    fn the_idle_timeout_ends_a_session() {
        let s = Sessions::new(900, 28800);
        let (id, _) = s.create(Some(alice()), None, 1000).unwrap();
        assert!(s.get(&id, 1899).is_ok());
        assert!(
            s.get(&id, 1899 + 899).is_ok(),
            "each use restarts the idle clock"
        );
        let ended = s.get(&id, 2798 + 900).unwrap_err();
        assert_eq!((ended.why, ended.login), (Lookup::Idle, Some(alice())));
        assert_eq!(s.get(&id, 2798 + 901).unwrap_err().why, Lookup::Unknown);
    }

    #[test]
    fn the_lifetime_ends_a_busy_session() {
        let s = Sessions::new(900, 3600);
        let (id, _) = s.create(Some(alice()), None, 0).unwrap();
        let mut t = 0;
        while t + 600 < 3600 {
            t += 600;
            assert!(s.get(&id, t).is_ok(), "at {t}");
        }
        assert_eq!(s.get(&id, 3600).unwrap_err().why, Lookup::Lifetime);
    }

    #[test]
    fn signing_in_replaces_the_old_id() {
        let s = Sessions::new(900, 3600);
        let (pre, _) = s.create(None, None, 0).unwrap();
        let (id, _) = s.create(Some(alice()), Some(&pre), 1).unwrap();
        assert_ne!(pre, id);
        assert_eq!(s.get(&pre, 2).unwrap_err().why, Lookup::Unknown);
        assert_eq!(s.get(&id, 2).unwrap().login, Some(alice()));
    }

    #[test]
    fn csrf_is_checked() {
        let s = Sessions::new(900, 3600);
        let (id, csrf) = s.create(Some(alice()), None, 0).unwrap();
        let session = s.get(&id, 1).unwrap();
        assert!(csrf_ok(&session, Some(&csrf)));
        assert!(!csrf_ok(&session, None));
        assert!(!csrf_ok(&session, Some("")));
        let mut wrong = csrf.clone();
        wrong.replace_range(0..1, if csrf.starts_with('A') { "B" } else { "A" });
        assert!(!csrf_ok(&session, Some(&wrong)));
        let (_, other) = s.create(Some(alice()), None, 0).unwrap();
        assert!(!csrf_ok(&session, Some(&other)));
    }

    #[test]
    fn a_flash_is_shown_once() {
        let s = Sessions::new(900, 3600);
        let (id, _) = s.create(Some(alice()), None, 0).unwrap();
        s.flash(&id, Flash::Message("done".into()));
        assert_eq!(
            s.get(&id, 1).unwrap().flash,
            Some(Flash::Message("done".into()))
        );
        assert_eq!(s.get(&id, 2).unwrap().flash, None);
    }

    #[test]
    fn pre_sessions_are_bounded_and_cannot_push_out_signed_in_ones() {
        let s = Sessions::new(900, 3600);
        let (id, _) = s.create(Some(alice()), None, 0).unwrap();
        for _ in 0..MAX_PRE_SESSIONS + 10 {
            s.create(None, None, 1).unwrap();
        }
        assert_eq!(s.count(), MAX_PRE_SESSIONS + 1);
        assert!(s.get(&id, 2).is_ok());
    }

    #[test]
    fn the_cookie_is_read_and_written_with_its_flags() {
        let mut h = axum::http::HeaderMap::new();
        let id = "a".repeat(43);
        h.insert(
            "cookie",
            format!("x=1; {COOKIE}={id}; y=2").parse().unwrap(),
        );
        assert_eq!(cookie_value(&h), Some(id.clone()));
        h.insert("cookie", format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(cookie_value(&h), None);
        assert_eq!(
            set_cookie(&id, true),
            format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Secure")
        );
        assert!(set_cookie("", false).contains("Max-Age=0"));
    }
}
