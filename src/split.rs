//! The split rule: how `password + code` is taken apart, and what kind of code a string
//! ends with.
//!
//! One rule, looked at in this order, decides the kind, without ever trying several splits:
//! 1. the string ends in `digits` ASCII digits → a TOTP code ([`split`] below);
//! 2. else the whole string is 20 letters (optionally `abcde-fghij-klmno-pqrst`) → an app
//!    password, which stands alone, with no password before it;
//! 3. else it ends in a recovery code `abcd-efgh-ijkl` (letters) after at least one byte →
//!    password + recovery code;
//! 4. else there is no code (`no_code`).
//!
//! The kinds cannot be confused: a TOTP string ends in a digit, the other two in a letter,
//! and an app password holds no digit and no other character at all.
//!
//! For a login with MFA the supplied string must be at least one byte of password followed by
//! exactly `digits` ASCII digits (`0`-`9`). The last `digits` bytes are the code, everything
//! before them is the password, byte for byte (a password may itself end in digits, hold
//! spaces or be non-UTF-8). There is no fallback: a string that does not end in `digits` ASCII
//! digits is refused (`no_code`), never treated as a bare password. A trailing newline or
//! space, or a non-ASCII digit, therefore means "no code".

/// The two parts of a supplied string. Both borrow from it; the caller owns zeroing.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Everything before the code: what the password module must receive.
    pub password: &'a [u8],
    /// The trailing `digits` ASCII digits.
    pub code: &'a [u8],
}

/// What a supplied string holds, by the rule in the module comment.
#[derive(Debug, PartialEq, Eq)]
pub enum Supplied<'a> {
    /// Password + TOTP code.
    Totp(Parts<'a>),
    /// An app password (its letters, lower-cased).
    AppPassword(zeroize::Zeroizing<Vec<u8>>),
    /// Password + recovery code.
    Recovery(Parts<'a>),
    /// No code of any kind.
    NoCode,
}

/// Classifies `supplied` for a login whose codes have `digits` digits.
pub fn classify(supplied: &[u8], digits: usize) -> Supplied<'_> {
    if let Some(parts) = split(supplied, digits) {
        return Supplied::Totp(parts);
    }
    if let Some(letters) = crate::credential::app_password_letters(supplied) {
        return Supplied::AppPassword(letters);
    }
    let n = crate::credential::RECOVERY_CODE_LEN;
    if supplied.len() > n && crate::credential::is_recovery_code(&supplied[supplied.len() - n..]) {
        let (password, code) = supplied.split_at(supplied.len() - n);
        return Supplied::Recovery(Parts { password, code });
    }
    Supplied::NoCode
}

/// Splits `supplied` into password and a code of exactly `digits` ASCII digits, or `None`
/// when the string has no such code or no password before it.
pub fn split(supplied: &[u8], digits: usize) -> Option<Parts<'_>> {
    if digits == 0 || supplied.len() <= digits {
        return None;
    }
    let (password, code) = supplied.split_at(supplied.len() - digits);
    code.iter()
        .all(u8::is_ascii_digit)
        .then_some(Parts { password, code })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_example_from_the_readme_splits() {
        let parts = split(b"T9D3K!px189145", 6).unwrap();
        assert_eq!(parts.password, b"T9D3K!px");
        assert_eq!(parts.code, b"189145");
    }

    #[test]
    fn a_password_ending_in_digits_keeps_them() {
        let parts = split(b"secret2024123456", 6).unwrap();
        assert_eq!(parts.password, b"secret2024");
        assert_eq!(parts.code, b"123456");
    }

    #[test]
    fn strings_without_a_code_are_refused() {
        for s in [
            &b""[..],
            b"123456",
            b"pass12345",
            b"pass123456\n",
            b"pass123456 ",
            b"pass12345a",
            "pass12345\u{0661}".as_bytes(),
            "pass１２３４５６".as_bytes(),
        ] {
            assert_eq!(split(s, 6), None, "{s:?}");
        }
    }

    #[test]
    fn eight_digit_codes_split_at_eight() {
        let parts = split(b"pw12345678", 8).unwrap();
        assert_eq!((parts.password, parts.code), (&b"pw"[..], &b"12345678"[..]));
    }

    #[test]
    fn each_kind_is_recognised_by_its_end() {
        assert!(matches!(classify(b"pw123456", 6), Supplied::Totp(_)));
        assert!(matches!(
            classify(b"abcde-fghij-klmno-pqrst", 6),
            Supplied::AppPassword(_)
        ));
        assert!(matches!(
            classify(b"abcdefghijklmnopqrst", 6),
            Supplied::AppPassword(_)
        ));
        match classify(b"pw!abcd-efgh-ijkl", 6) {
            Supplied::Recovery(p) => {
                assert_eq!((p.password, p.code), (&b"pw!"[..], &b"abcd-efgh-ijkl"[..]))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify(b"abcd-efgh-ijkl", 6),
            Supplied::NoCode,
            "a recovery code needs a password"
        );
        assert_eq!(classify(b"password", 6), Supplied::NoCode);
    }

    proptest! {
        #[test]
        fn classification_is_decided_by_the_last_byte(s in proptest::collection::vec(any::<u8>(), 0..64)) {
            match classify(&s, 6) {
                Supplied::Totp(_) => prop_assert!(s.last().unwrap().is_ascii_digit()),
                Supplied::AppPassword(_) | Supplied::Recovery(_) => prop_assert!(s.last().unwrap().is_ascii_alphabetic()),
                Supplied::NoCode => {}
            }
        }

        #[test]
        fn split_then_join_gives_the_input_back(s in proptest::collection::vec(any::<u8>(), 0..64), d in 6usize..=8) {
            if let Some(p) = split(&s, d) {
                let joined = [p.password, p.code].concat();
                prop_assert_eq!(&joined, &s);
                prop_assert_eq!(p.code.len(), d);
                prop_assert!(!p.password.is_empty());
            }
        }

        #[test]
        fn any_password_with_a_code_splits_back(pw in proptest::collection::vec(any::<u8>(), 1..40), code in "[0-9]{6}") {
            let s = [pw.as_slice(), code.as_bytes()].concat();
            let p = split(&s, 6).unwrap();
            prop_assert_eq!(p.password, pw.as_slice());
            prop_assert_eq!(p.code, code.as_bytes());
        }
    }
}
