//! The `otpauth://totp/...` URI of a record, the text an authenticator app scans from a QR
//! code (the faces draw the QR code; the URI is the same for all of them).

use crate::login::Login;
use crate::record::Record;
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

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_keeps_unreserved_only() {
        assert_eq!(percent("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(percent("alice+x@example.com"), "alice%2Bx%40example.com");
        assert_eq!(percent("My Mail"), "My%20Mail");
    }
}
