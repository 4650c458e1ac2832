//! Pending enrolments: `record_dir/pending/<login>.toml`, written by `mailmfa enable --begin`,
//! never read by the module (a pending secret never turns MFA on).
//!
//! A pending file is a record (the exact format of [`crate::record`], in a `[record]` table)
//! plus what the enrolment needs until it is confirmed: when it expires, whether it may
//! replace an active record, and how many wrong confirming codes it has seen. It holds a
//! secret, so it is written like a record (temp file, fsync, rename, mode 0600) into a
//! directory of mode 0700, and read with the same checks as a record.
//!
//! ```toml
//! expires_at = 1796013813   # Unix time; an older enrolment is refused and removed
//! replace = false           # may replace an active record (decided by `--begin --replace`)
//! failed = 0                # wrong confirming codes so far
//!
//! [record]
//! version = 1
//! secret = "..."
//! algorithm = "SHA1"
//! digits = 6
//! period = 30
//! created = 1796013213
//! ```

use super::files::{self, write_owned};
use super::secure::{self, Owners, Refusal};
use super::StoreError;
use crate::config::Settings;
use crate::log::Reason;
use crate::login::Login;
use crate::record::{Record, RecordError};
use std::io;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Seconds a pending enrolment waits for its confirming code.
pub const PENDING_LIFETIME: u64 = 600;

/// Name of the pending directory inside `record_dir`.
pub const PENDING_DIR: &str = "pending";

/// One pending enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The record that confirming turns on (`created` is the time of `--begin` until then).
    pub record: Record,
    /// Unix time after which the enrolment is refused.
    pub expires_at: u64,
    /// Whether confirming may replace an active record.
    pub replace: bool,
    /// Wrong confirming codes so far.
    pub failed: u32,
}

impl Pending {
    /// Parses the text of a pending file. Errors name the rule, never a value.
    pub fn parse(text: &str) -> Result<Pending, RecordError> {
        let bad = || {
            RecordError(
                "not a valid pending enrolment (syntax, missing or unknown key)".to_string(),
            )
        };
        let mut table: toml::Table = text.parse().map_err(|_| bad())?;
        let expires_at = match table.remove("expires_at") {
            Some(toml::Value::Integer(t)) if t >= 0 => t as u64,
            _ => return Err(bad()),
        };
        let replace = match table.remove("replace") {
            Some(toml::Value::Boolean(b)) => b,
            None => false,
            _ => return Err(bad()),
        };
        let failed = match table.remove("failed") {
            Some(toml::Value::Integer(n)) if (0..=i64::from(u32::MAX)).contains(&n) => n as u32,
            None => 0,
            _ => return Err(bad()),
        };
        let record = match table.remove("record") {
            Some(toml::Value::Table(record)) => record,
            _ => return Err(bad()),
        };
        if !table.is_empty() {
            return Err(bad());
        }
        let record_text = Zeroizing::new(toml::to_string(&record).map_err(|_| bad())?);
        let record = Record::parse(&record_text)?;
        Ok(Pending {
            record,
            expires_at,
            replace,
            failed,
        })
    }

    /// The pending file's text (holds the secret: write it only to a 0600 file).
    pub fn to_toml(&self) -> Zeroizing<String> {
        let record: toml::Table =
            toml::from_str(&self.record.to_toml()).expect("a record's text is a TOML table");
        let mut file = toml::Table::new();
        file.insert(
            "expires_at".into(),
            toml::Value::Integer(self.expires_at as i64),
        );
        file.insert("replace".into(), toml::Value::Boolean(self.replace));
        file.insert(
            "failed".into(),
            toml::Value::Integer(i64::from(self.failed)),
        );
        file.insert("record".into(), toml::Value::Table(record));
        let mut text = Zeroizing::new(
            "# A pending enrolment written by `mailmfa enable --begin`; the module never reads it.\n"
                .to_string(),
        );
        text.push_str(&toml::to_string(&file).expect("a table always serialises"));
        text
    }

    /// Whether the enrolment is past its expiry at `now`.
    pub fn expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// Pending enrolments as files in `record_dir/pending`.
#[derive(Clone, Debug)]
pub struct PendingStore {
    dir: PathBuf,
    /// Root, the running user and the settings' `record_owner`.
    owners: Owners,
}

impl PendingStore {
    /// The pending store of the `record_dir` named in `settings`; `euid` is the running user.
    pub fn new(settings: &Settings, euid: u32) -> PendingStore {
        PendingStore {
            dir: settings.record_dir.join(PENDING_DIR),
            owners: settings.record_owners(euid),
        }
    }

    /// The pending directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the user's pending file.
    pub fn path(&self, login: &Login) -> PathBuf {
        self.dir.join(format!("{login}.toml"))
    }

    fn dir_error(&self, why: String) -> StoreError {
        StoreError::Dir {
            path: self.dir.clone(),
            why,
            reason: Reason::RecordDirUnusable,
        }
    }

    /// Checks the pending directory; `Ok(false)` when it does not exist.
    fn check_dir(&self) -> Result<bool, StoreError> {
        match secure::check_dir(&self.dir, self.owners) {
            Ok(()) => Ok(true),
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(Refusal::Io(e)) => Err(self.dir_error(e.to_string())),
            Err(Refusal::Unsafe(why)) => Err(self.dir_error(why)),
        }
    }

    /// Creates the pending directory (mode 0700) when it is missing, then checks it. The
    /// `record_dir` around it must have been checked by the caller.
    pub fn ensure_dir(&self) -> Result<(), StoreError> {
        if self.check_dir()? {
            return Ok(());
        }
        files::make_dir(&self.dir, self.owners.given_by_root())
            .map_err(|e| self.dir_error(format!("cannot create: {e}")))?;
        if self.check_dir()? {
            Ok(())
        } else {
            Err(self.dir_error("vanished after it was created".to_string()))
        }
    }

    /// The user's pending enrolment, `None` when there is none.
    pub fn read(&self, login: &Login) -> Result<Option<Pending>, StoreError> {
        if !self.check_dir()? {
            return Ok(None);
        }
        files::read_parsed(&self.path(login), self.owners, Pending::parse)
    }

    /// Writes (or replaces) the user's pending enrolment durably.
    pub fn write(&self, login: &Login, pending: &Pending) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let name = format!("{login}.toml");
        let contents = pending.to_toml();
        let owner = self.owners.given_by_root();
        write_owned(&self.dir, &name, contents.as_bytes(), true, owner).map_err(|e| {
            StoreError::Write {
                path: self.dir.join(&name),
                why: e.to_string(),
            }
        })
    }

    /// Removes the user's pending enrolment; `Ok(false)` when there was none.
    pub fn remove(&self, login: &Login) -> Result<bool, StoreError> {
        if !self.check_dir()? {
            return Ok(false);
        }
        let path = self.path(login);
        files::remove_if_present(&path).map_err(|e| StoreError::Write {
            path,
            why: e.to_string(),
        })
    }

    /// Every login with a pending enrolment (expired ones included).
    pub fn list(&self) -> Result<Vec<Login>, StoreError> {
        if !self.check_dir()? {
            return Ok(Vec::new());
        }
        files::logins_in(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Algorithm;

    fn pending() -> Pending {
        let record =
            Record::new(b"12345678901234567890".to_vec(), Algorithm::SHA1, 6, 30, 5).unwrap();
        Pending {
            record,
            expires_at: 605,
            replace: true,
            failed: 2,
        }
    }

    #[test]
    fn a_pending_enrolment_round_trips() {
        let p = pending();
        assert_eq!(Pending::parse(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn a_pending_replacement_keeps_app_passwords_in_its_record() {
        let mut p = pending();
        p.record.app_passwords.push(crate::record::AppPassword {
            name: "phone".into(),
            hash: crate::credential::hash(b"abcdefghijklmnopqrst", &[1; 16]),
            services: vec!["imap".into()],
            created: 3,
            expires: Some(9),
            from: Vec::new(),
        });
        p.record
            .recovery_codes
            .push(crate::credential::hash(b"abcdabcdabcd", &[2; 16]));
        assert_eq!(Pending::parse(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn the_module_cannot_read_a_pending_file_as_a_record() {
        assert!(Record::parse(&pending().to_toml()).is_err());
    }

    #[test]
    fn bad_pending_files_are_refused_without_echoing_values() {
        let good = pending().to_toml().to_string();
        for text in [
            "",
            &good.replace("expires_at = 605", "expires_at = \"x\""),
            &good.replace("expires_at = 605\n", ""),
            &good.replace("failed = 2", "failed = -1"),
            &format!("extra = 1\n{good}"),
            &good.replace("digits = 6", "digits = 7"),
        ] {
            let err = Pending::parse(text).unwrap_err().to_string();
            assert!(!err.contains("GEZDGNBV"), "{err}");
        }
        assert!(!pending().expired(604));
        assert!(pending().expired(605));
    }
}
