//! The split rule: how `password + code` is taken apart.
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

    proptest! {
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
