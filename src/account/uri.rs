//! The `otpauth://totp/...` URI of a record, the text an authenticator app scans from a QR
//! code (the faces draw the QR code; the URI is the same for all of them).

use crate::login::Login;
use crate::record::Record;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

/// The `otpauth://totp/ISSUER:LOGIN?secret=...` URI of a record (holds the secret: shown
/// once, to the enrolling user).
pub fn otpauth_uri(issuer: &str, login: &Login, record: &Record) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "otpauth://totp/{issuer_enc}:{login_enc}?secret={secret}&issuer={issuer_enc}&algorithm={alg}&digits={digits}&period={period}",
        issuer_enc = percent(issuer),
        login_enc = percent(login.as_str()),
        secret = record.secret_base32().as_str(),
        alg = record.algorithm.name(),
        digits = record.digits,
        period = record.period,
    ))
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `text` (UTF-8 bytes, upper-case hex) for a label or a query value.
fn percent(text: &str) -> String {
    utf8_percent_encode(text, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_keeps_unreserved_only() {
        assert_eq!(percent("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(percent("alice+x@example.com"), "alice%2Bx%40example.com");
        assert_eq!(percent("My Mail"), "My%20Mail");
        assert_eq!(
            percent("Bücher:ü/?&=#"),
            "B%C3%BCcher%3A%C3%BC%2F%3F%26%3D%23"
        );
    }
}
