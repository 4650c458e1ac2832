//! Settings: `mailmfa.toml` and the module arguments on the pam.d line, one parser for both.
//!
//! The same option names work in both places (as in pam_faillock): the file is read first,
//! then each `key=value` argument of the pam.d line overrides one setting for that service.
//! Unknown or duplicated keys and out-of-range values are errors, and the module denies on
//! any error (fail closed): a typo must never silently drop a protection. A missing config
//! file is an error too, because a lost file that moved `record_dir` would otherwise make
//! every mailbox look like one without MFA. The reference is `docs/configuration.md`.
//!
//! - `settings.rs` — every setting: its default and its check, and [`Settings::set`], the one
//!   parser of an option by its name that the file and the pam.d line both go through.
//! - `file.rs` — `mailmfa.toml` ([`Settings::from_toml`]).
//! - `module_args.rs` — the pam.d line: the phase, `config=`, `pwdfile=` and the overrides
//!   ([`ModuleArgs`]).
//! - `cache.rs` — the module's settings: the file checked, parsed once per version of it and
//!   kept between the logins of one process ([`cache::load`]).
//!
//! This file holds what they share: the error ([`ConfigError`]) and where the file is.

pub mod cache;
mod file;
mod module_args;
mod settings;

pub use module_args::{ModuleArgs, Phase};
pub(crate) use settings::absolute_path;
pub use settings::{
    parse_duration, RecordsBackend, RedisSettings, Reuse, Settings, SqlSettings, StateBackend,
    MAX_FAILURES_LIMIT, MAX_REUSE_FOR,
};

use std::fmt;

/// Where the module and the command look for the config file unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mailmfa/mailmfa.toml";

/// A configuration error: where it is and what is wrong. Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// `module arguments` or the config file's path.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn error(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        origin: origin.to_string(),
        message: message.into(),
    }
}

/// The pam.d line `line` parsed, for the tests of every part.
#[cfg(test)]
fn args(line: &str) -> Result<ModuleArgs, ConfigError> {
    ModuleArgs::parse(&line.split_whitespace().collect::<Vec<_>>())
}
