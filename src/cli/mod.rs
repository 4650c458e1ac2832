//! The `mailmfa` command, one file per subcommand. It reuses the library (config, login rule,
//! record and state formats, store, code check) and adds only the command line, prompts, QR
//! rendering and output.
//!
//! - [`enable`] — turn MFA on: interactive, or `--begin`/`--confirm` for panels.
//! - [`disable`] — turn MFA off with a current code or a recovery code (or `--force`).
//! - [`status`] — `status LOGIN` and `list`: on/off/pending, last login, throttle; no secret.
//! - [`check`] — run a PAM service's whole stack like Dovecot and print the module's reason.
//! - [`app_password`] — `app-password add|list|revoke`: per-device passwords for mail clients.
//! - [`recovery`] — `recovery-codes LOGIN`: one-time codes for a lost phone, and their check.
//! - [`notify`] — one pass of the notifier: mails to the owners from the spool.
//! - [`serve`] — start the web panel, `mailmfa-panel`, in place of the command.
//! - [`qr`] — the QR code in the terminal, as SVG and as PNG.
//! - [`command`] — the command line: every subcommand, option and help text (clap), from
//!   which [`man`] makes the man page and `mailmfa completions` the shell completions.
//! - [`exit`], [`prompt`], [`output`] — the plumbing.
//!
//! The rules of every change (and its audit line) are in the library's `mailmfa::account`,
//! shared with the web panel; a subcommand parses, calls it, and prints what it returns.
//!
//! This file holds what every subcommand starts with: the settings, the login, the checks of
//! the directories it reads or writes, and the clock.

pub mod app_password;
pub mod check;
pub mod command;
pub mod db;
pub mod disable;
pub mod doctor;
pub mod enable;
pub mod exit;
pub mod man;
pub mod notify;
pub mod output;
pub mod prompt;
pub mod qr;
pub mod recovery;
pub mod serve;
pub mod status;

use exit::{Exit, Failure};
use mailmfa::account::{Actor, Ctx, Face};
use mailmfa::config::{Settings, DEFAULT_CONFIG_PATH};
use mailmfa::login::Login;
use mailmfa::pam::sys::effective_uid;
use mailmfa::store::backend::Backend;
use mailmfa::store::pending::PendingStore;
use mailmfa::store::secure::{self, Owners, Refusal};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a subcommand works with: the settings read from `--config`, who runs it, and when.
pub struct Context {
    /// The settings, exactly as the module reads them from the same file.
    pub settings: Settings,
    /// The effective uid of this process.
    pub euid: u32,
    /// Unix time when the command started.
    pub now: u64,
}

impl Context {
    /// Reads `--config PATH` (or the default) with the checks the module applies to it (the
    /// file and every directory above it).
    pub fn load(config: Option<&str>) -> Result<Context, Failure> {
        let config_path = PathBuf::from(config.unwrap_or(DEFAULT_CONFIG_PATH));
        let euid = effective_uid();
        let shown = config_path.display();
        let text = match secure::read_trusted(&config_path, euid) {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Err(Failure::new(
                    Exit::Error,
                    format!(
                        "{shown}: does not exist. The module needs it too; an empty file means the \
                         defaults: `install -m 0644 -o root /dev/null {shown}`"
                    ),
                ))
            }
            Err(Refusal::Unsafe(why)) => {
                return Err(Failure::new(
                    Exit::NotPermitted,
                    format!("{shown}: {why} (the module refuses it too)"),
                ))
            }
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Failure::new(
                    Exit::NotPermitted,
                    format!("{shown}: {e}: run mailmfa as root"),
                ))
            }
            Err(Refusal::Io(e)) => return Err(Failure::new(Exit::Error, format!("{shown}: {e}"))),
        };
        let settings = Settings::from_toml(&text, &config_path)
            .map_err(|e| Failure::new(Exit::Error, e.to_string()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| Failure::new(Exit::Error, "the system clock is before 1970"))?;
        Ok(Context {
            settings,
            euid,
            now,
        })
    }

    /// The account layer's context: this command, acting now as this user.
    pub fn acct(&self) -> Ctx<'_> {
        Ctx {
            settings: &self.settings,
            euid: self.euid,
            now: self.now,
            actor: Actor {
                face: Face::Command,
                client: None,
            },
        }
    }

    /// An account layer's refusal of a change to `login`, as the command says it.
    pub fn failure(
        &self,
        login: &Login,
    ) -> impl Fn(mailmfa::account::AccountError) -> Failure + '_ {
        let login = login.clone();
        move |e| exit::account_failure(e, &login, &self.settings)
    }

    /// The store of records and state named in the settings.
    pub fn store(&self) -> Backend {
        Backend::open(&self.settings, self.euid)
    }

    /// The store of pending enrolments.
    pub fn pending(&self) -> PendingStore {
        PendingStore::new(&self.settings, self.euid)
    }

    /// Checks `record_dir` and `state_dir` before anything is read or written: they exist, are
    /// safe by the module's rules, and this process may use them.
    pub fn check_dirs(&self) -> Result<(), Failure> {
        for (dir, owners) in self.dirs() {
            check_dir(dir, owners)?;
        }
        Ok(())
    }

    /// `record_dir` and `state_dir`, each with who may own it (the `record_owner` only the
    /// record directory).
    pub fn dirs(&self) -> [(&Path, Owners); 2] {
        [
            (
                &self.settings.record_dir,
                self.settings.record_owners(self.euid),
            ),
            (&self.settings.state_dir, Owners::from(self.euid)),
        ]
    }
}

/// Checks one directory the way the module does, with a message that says how to fix it.
pub fn check_dir(dir: &Path, owners: Owners) -> Result<(), Failure> {
    let shown = dir.display();
    let euid = owners.euid;
    match secure::check_dir(dir, owners) {
        Ok(()) => {}
        Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::new(
                Exit::Error,
                format!(
                    "{shown}: does not exist: create it with `install -d -m 0700 -o root {shown}`"
                ),
            ))
        }
        Err(Refusal::Io(e)) => return Err(Failure::new(Exit::Error, format!("{shown}: {e}"))),
        Err(Refusal::Unsafe(why)) => {
            return Err(Failure::new(
                Exit::NotPermitted,
                format!(
                    "{shown}: {why}; mailmfa refuses to use what the module would refuse to read"
                ),
            ))
        }
    }
    let meta =
        std::fs::metadata(dir).map_err(|e| Failure::new(Exit::Error, format!("{shown}: {e}")))?;
    if euid != 0 && meta.uid() != euid && Some(meta.uid()) != owners.extra {
        return Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "{shown} is owned by uid {}: run mailmfa as root (you are uid {euid})",
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// Parses a login by the library's one normalisation rule.
pub fn parse_login(raw: &str) -> Result<Login, Failure> {
    Login::parse(raw.as_bytes()).map_err(|e| {
        Failure::usage(format!(
            "`{}`: {e}",
            mailmfa::login::printable(raw.as_bytes())
        ))
    })
}
