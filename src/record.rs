//! The per-user record format (`<record_dir>/<login>.toml`): the secret and how codes are made.
//!
//! Written only by the `mailmfa` command, read only by the module. A record that does not
//! parse or validate denies the login (fail closed). Errors name the line and the rule that
//! failed, never a value: a value could be the secret.
//!
//! ```toml
//! version = 1
//! secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"   # base32 (RFC 4648), at least 128 bits
//! algorithm = "SHA1"                          # SHA1 | SHA256 | SHA512
//! digits = 6                                  # 6 | 8
//! period = 30                                 # seconds, 15..=300
//! created = 1796013213                        # Unix time of the confirmation
//! label = "alice's phone"                     # optional, free text
//! recovery_codes = ["sha256$<salt>$<digest>"] # optional: hashes of one-time recovery codes
//!
//! [[app_passwords]]                           # optional, one table per app password
//! name = "thunderbird"
//! hash = "sha256$<salt>$<digest>"
//! services = ["dovecot", "smtp"]              # PAM services it is valid for; [] = all
//! created = 1796013213
//! expires = 1803789213                        # optional Unix time
//! ```

use crate::credential;
use crate::otp::{Algorithm, Params};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// The only record format version this build reads and writes.
pub const RECORD_VERSION: u32 = 1;

/// Fewest secret bytes accepted: RFC 4226 §4 requires at least 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;

/// A validated record.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    secret: Zeroizing<Vec<u8>>,
    /// HMAC hash of the codes.
    pub algorithm: Algorithm,
    /// Code length: 6 or 8.
    pub digits: u32,
    /// Step length in seconds.
    pub period: u64,
    /// Unix time the record was confirmed.
    pub created: u64,
    /// Free text naming the device, shown by `mailmfa status`.
    pub label: Option<String>,
    /// App passwords (hashed).
    pub app_passwords: Vec<AppPassword>,
    /// Hashes of the current set of recovery codes (used ones are marked in the state).
    pub recovery_codes: Vec<String>,
}

/// One app password: a generated password for one device, valid without a code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPassword {
    /// The owner's name for it (unique per login): letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Salted hash (`credential::hash`).
    pub hash: String,
    /// PAM services it is valid for (PAM_SERVICE); empty means every service.
    #[serde(default)]
    pub services: Vec<String>,
    /// Unix time it was made.
    pub created: u64,
    /// Unix time it stops working, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Client addresses (PAM_RHOST, as IP addresses) it works from; empty means any. The
    /// webmail plugin's session credentials name the webmail host here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
}

/// Whether `name` can name an app password (1-64 of letters, digits, `.`, `_`, `-`).
pub fn is_valid_app_password_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("secret", &"<hidden>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Why a record was refused. Holds no value from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError(pub String);

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RecordError {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    secret: String,
    algorithm: Algorithm,
    digits: u32,
    period: u64,
    created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recovery_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    app_passwords: Vec<AppPassword>,
}

impl Drop for RecordFile {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Record {
    /// Builds a record from a raw secret; checks the same rules as [`Record::parse`].
    pub fn new(
        secret: Vec<u8>,
        algorithm: Algorithm,
        digits: u32,
        period: u64,
        created: u64,
    ) -> Result<Record, RecordError> {
        let record = Record {
            secret: Zeroizing::new(secret),
            algorithm,
            digits,
            period,
            created,
            label: None,
            app_passwords: Vec::new(),
            recovery_codes: Vec::new(),
        };
        record.validate()?;
        Ok(record)
    }

    /// Parses and validates the text of a record file.
    pub fn parse(text: &str) -> Result<Record, RecordError> {
        let file: RecordFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .unwrap_or(1);
            RecordError(format!(
                "line {line}: not a valid record (syntax, unknown key, missing key or wrong type)"
            ))
        })?;
        if file.version != RECORD_VERSION {
            return Err(RecordError(format!(
                "record version {} is not supported (this build reads version {RECORD_VERSION})",
                file.version
            )));
        }
        let secret = decode_secret(&file.secret)
            .ok_or_else(|| RecordError("`secret` is not base32 (RFC 4648)".to_string()))?;
        let record = Record {
            secret,
            algorithm: file.algorithm,
            digits: file.digits,
            period: file.period,
            created: file.created,
            label: file.label.clone(),
            app_passwords: file.app_passwords.clone(),
            recovery_codes: file.recovery_codes.clone(),
        };
        record.validate()?;
        Ok(record)
    }

    fn validate(&self) -> Result<(), RecordError> {
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err(RecordError("`secret` is shorter than 128 bits".to_string()));
        }
        if self.digits != 6 && self.digits != 8 {
            return Err(RecordError("`digits` must be 6 or 8".to_string()));
        }
        if !(15..=300).contains(&self.period) {
            return Err(RecordError(
                "`period` must be 15 to 300 seconds".to_string(),
            ));
        }
        if !self
            .recovery_codes
            .iter()
            .all(|h| credential::is_valid_hash(h))
        {
            return Err(RecordError(
                "a `recovery_codes` entry is not a valid hash".to_string(),
            ));
        }
        for (i, app) in self.app_passwords.iter().enumerate() {
            if !is_valid_app_password_name(&app.name)
                || self.app_passwords[..i].iter().any(|a| a.name == app.name)
            {
                return Err(RecordError(format!(
                    "app password {}: invalid or repeated name",
                    i + 1
                )));
            }
            if !credential::is_valid_hash(&app.hash) {
                return Err(RecordError(format!(
                    "app password `{}`: invalid hash",
                    app.name
                )));
            }
            if app
                .services
                .iter()
                .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(RecordError(format!(
                    "app password `{}`: invalid service name",
                    app.name
                )));
            }
        }
        Ok(())
    }

    /// The record as file text (holds the secret: write it only to a 0600 file).
    pub fn to_toml(&self) -> Zeroizing<String> {
        let file = RecordFile {
            version: RECORD_VERSION,
            secret: self.secret_base32().to_string(),
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
            created: self.created,
            label: self.label.clone(),
            recovery_codes: self.recovery_codes.clone(),
            app_passwords: self.app_passwords.clone(),
        };
        Zeroizing::new(toml::to_string(&file).expect("a record always serialises"))
    }

    /// The secret in base32 without padding, as authenticator apps take it.
    pub fn secret_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            &self.secret,
        ))
    }

    /// The parameters the code check needs.
    pub fn params(&self) -> Params<'_> {
        Params {
            secret: &self.secret,
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }
}

/// Decodes base32 (upper or lower case, with or without `=` padding, spaces ignored).
fn decode_secret(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut clean: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    while clean.ends_with('=') {
        clean.pop();
    }
    if clean.is_empty()
        || !clean
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
    {
        return None;
    }
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &clean).map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version = 1\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\ncreated = 1\n";

    #[test]
    fn a_good_record_parses_and_round_trips() {
        let r = Record::parse(GOOD).unwrap();
        assert_eq!(r.params().secret, b"12345678901234567890");
        assert_eq!(Record::parse(&r.to_toml()).unwrap(), r);
    }

    #[test]
    fn bad_records_are_refused_without_echoing_values() {
        let cases = [
            "",
            "version = 1",
            &GOOD.replace("version = 1", "version = 2"),
            &GOOD.replace("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "not base32!"),
            &GOOD.replace("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "GEZDGNBV"),
            &GOOD.replace("digits = 6", "digits = 7"),
            &GOOD.replace("digits = 6", "digits = \"6\""),
            &GOOD.replace("period = 30", "period = 0"),
            &GOOD.replace("\"SHA1\"", "\"MD5\""),
            &format!("{GOOD}extra = 1\n"),
            &GOOD[..GOOD.len() / 2],
            "secret = 123456789\n",
        ];
        for text in cases {
            let err = Record::parse(text).unwrap_err().to_string();
            assert!(
                !err.contains("GEZDGNBV") && !err.contains("123456789"),
                "{err}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let r = Record::parse(GOOD).unwrap();
        assert!(!format!("{r:?}").contains("GEZ"));
    }
}
