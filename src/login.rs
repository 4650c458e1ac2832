//! Login-name normalisation: the one rule that turns what a client typed into the name of a
//! user's files.
//!
//! Login names are mail addresses more often than Unix accounts, so there is no `getpwnam`.
//! The rule (documented in `docs/configuration.md`):
//!
//! 1. The name must be 1..=[`MAX_LOGIN_BYTES`] bytes of printable ASCII letters, digits and
//!    `. _ - + @ =`; nothing is trimmed. Anything else (spaces, `/`, `%`, NUL, control
//!    characters, non-ASCII look-alikes, non-UTF-8) is refused.
//! 2. The first character must be a letter or a digit (no `.`-files, no `..`, no `-options`).
//! 3. ASCII letters are lower-cased: `Alice@Example.COM` and `alice@example.com` are the same
//!    mailbox, so no case variant can reach a login without MFA.
//!
//! A refused name is never "no MFA": both phases deny it.

use std::fmt;

/// Longest accepted login, in bytes. File names are limited to 255 bytes on Linux; the
/// longest file made from a login is `.<login>.state.tmp` (11 more bytes).
pub const MAX_LOGIN_BYTES: usize = 240;

/// A login name that passed the normalisation rule; safe to use as a file-name stem.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Login(String);

/// Why a name cannot be mapped to a file safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_LOGIN_BYTES`].
    TooLong,
    /// The name holds a byte outside the allowed set.
    BadCharacter,
    /// The name starts with something other than a letter or digit.
    BadFirstCharacter,
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoginError::Empty => "the login name is empty",
            LoginError::TooLong => "the login name is longer than 240 bytes",
            LoginError::BadCharacter => {
                "the login name holds a character other than ASCII letters, digits and . _ - + @ ="
            }
            LoginError::BadFirstCharacter => "the login name does not start with a letter or digit",
        })
    }
}

impl std::error::Error for LoginError {}

impl Login {
    /// Normalises raw login bytes (as PAM hands them over) by the rule in the module comment.
    pub fn parse(raw: &[u8]) -> Result<Login, LoginError> {
        if raw.is_empty() {
            return Err(LoginError::Empty);
        }
        if raw.len() > MAX_LOGIN_BYTES {
            return Err(LoginError::TooLong);
        }
        if !raw[0].is_ascii_alphanumeric() {
            return Err(LoginError::BadFirstCharacter);
        }
        if !raw.iter().all(|&b| is_allowed(b)) {
            return Err(LoginError::BadCharacter);
        }
        let name: String = raw
            .iter()
            .map(|&b| char::from(b.to_ascii_lowercase()))
            .collect();
        Ok(Login(name))
    }

    /// The normalised name, also the stem of the user's file names.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'@' | b'=')
}

/// Renders any raw name for a log line: allowed bytes as they are, every other byte as `?`,
/// cut to 64 bytes. Used only for names that [`Login::parse`] refused.
pub fn printable(raw: &[u8]) -> String {
    raw.iter()
        .take(64)
        .map(|&b| if is_allowed(b) { char::from(b) } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_refusal_says_what_is_wrong_with_the_name() {
        let long = vec![b'a'; MAX_LOGIN_BYTES + 1];
        for (raw, words) in [
            (&b""[..], "empty"),
            (&long[..], "longer than 240"),
            (&b"al ice"[..], "character other than"),
            (&b".alice"[..], "does not start with"),
        ] {
            let e = Login::parse(raw).unwrap_err();
            assert!(e.to_string().contains(words), "{e:?}: {e}");
        }
    }

    #[test]
    fn mail_addresses_are_lower_cased() {
        assert_eq!(
            Login::parse(b"Alice@Example.COM").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            &b""[..],
            b"../etc/passwd",
            b"a/b",
            b".hidden",
            b"..",
            b"-rf",
            b"a b",
            b" alice",
            b"alice ",
            b"al\0ice",
            b"al\nice",
            b"al%2fice",
            "\u{0430}lice".as_bytes(), // Cyrillic a
            b"\xff\xfe",
        ] {
            assert!(Login::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Login::parse(&[b'a'; 241]), Err(LoginError::TooLong));
        assert!(Login::parse(&[b'a'; 240]).is_ok());
    }

    #[test]
    fn printable_hides_unsafe_bytes() {
        assert_eq!(printable(b"a/b\n\xff"), "a?b??");
    }

    proptest! {
        #[test]
        fn accepted_names_stay_in_their_directory(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(login) = Login::parse(&raw) {
                let s = login.as_str();
                prop_assert!(!s.contains('/'));
                prop_assert!(!s.starts_with('.'));
                prop_assert!(s.len() <= MAX_LOGIN_BYTES);
                prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()));
            }
        }

        #[test]
        fn distinct_normalised_names_never_share_a_file(a in "[A-Za-z0-9._@+=-]{1,20}", b in "[A-Za-z0-9._@+=-]{1,20}") {
            if let (Ok(la), Ok(lb)) = (Login::parse(a.as_bytes()), Login::parse(b.as_bytes())) {
                prop_assert_eq!(la == lb, a.eq_ignore_ascii_case(&b));
            }
        }
    }
}
