//! The pam.d line: which phase it runs, `config=`, `pwdfile=`, and the other `key=value`
//! arguments, each checked at once and applied over the file's settings.

use super::settings::absolute_path;
use super::{error, ConfigError, Settings, DEFAULT_CONFIG_PATH};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The phase a pam.d line runs (design §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Takes the code off the end of the password and hands the password on.
    Split,
    /// Checks the code kept by `split`, after the password module accepted the password.
    Verify,
    /// The `account` line: an app-password login (which skipped the password module) is
    /// allowed only while the mailbox is still alive in the password file (`pwdfile=`).
    Account,
}

impl Phase {
    /// The name used on the pam.d line and in log lines.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Split => "split",
            Phase::Verify => "verify",
            Phase::Account => "account",
        }
    }
}

/// What a pam.d line asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleArgs {
    /// `split` or `verify`.
    pub phase: Phase,
    /// `config=PATH`, else [`DEFAULT_CONFIG_PATH`].
    pub config_path: PathBuf,
    /// `pwdfile=PATH` (the `account` phase only, required there): the pam_pwdfile password
    /// file in which a mailbox must still have a line that is not locked.
    pub pwdfile: Option<PathBuf>,
    /// The remaining `key[=value]` arguments, in order, to apply over the file.
    pub overrides: Vec<(String, String)>,
    /// `fault_inject_panic`: panic inside the module (test builds only).
    #[cfg(feature = "fault-injection")]
    pub fault_inject_panic: bool,
}

const MODULE_ARGS: &str = "module arguments";

impl ModuleArgs {
    /// Parses the arguments of a pam.d line. Exactly one of `split` / `verify` is required.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ModuleArgs, ConfigError> {
        let mut phase = None;
        let mut config_path = None;
        let mut pwdfile = None;
        let mut overrides = Vec::new();
        let mut seen = BTreeSet::new();
        #[cfg(feature = "fault-injection")]
        let mut fault_inject_panic = false;
        for arg in args {
            let arg = arg.as_ref();
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (arg, None),
            };
            if !seen.insert(key.to_string()) {
                return Err(error(MODULE_ARGS, format!("`{key}` is given twice")));
            }
            match (key, value) {
                ("split", None) | ("verify", None) | ("account", None) => {
                    if phase.is_some() {
                        return Err(error(
                            MODULE_ARGS,
                            "give only one of `split`, `verify` and `account`",
                        ));
                    }
                    phase = Some(match key {
                        "split" => Phase::Split,
                        "verify" => Phase::Verify,
                        _ => Phase::Account,
                    });
                }
                ("config", Some(path)) if !path.is_empty() => {
                    config_path = Some(PathBuf::from(path))
                }
                ("pwdfile", Some(path)) => {
                    pwdfile = Some(absolute_path(key, path).map_err(|m| error(MODULE_ARGS, m))?)
                }
                #[cfg(feature = "fault-injection")]
                ("fault_inject_panic", None) => fault_inject_panic = true,
                (key, value) => {
                    // Checked now against defaults so that a bad argument is reported as one.
                    let value = value.unwrap_or("true");
                    Settings::default()
                        .set(key, value)
                        .map_err(|m| error(MODULE_ARGS, m))?;
                    overrides.push((key.to_string(), value.to_string()));
                }
            }
        }
        let phase = phase.ok_or_else(|| {
            error(
                MODULE_ARGS,
                "name the phase: `split` or `verify` (auth lines), `account` (account line)",
            )
        })?;
        match (phase, &pwdfile) {
            (Phase::Account, None) => {
                return Err(error(
                    MODULE_ARGS,
                    "`account` needs `pwdfile=PATH`: the password file whose mailboxes may use app passwords",
                ))
            }
            (Phase::Split | Phase::Verify, Some(_)) => {
                return Err(error(MODULE_ARGS, "`pwdfile=` belongs on the `account` line only"))
            }
            _ => {}
        }
        Ok(ModuleArgs {
            phase,
            config_path: config_path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH)),
            pwdfile,
            overrides,
            #[cfg(feature = "fault-injection")]
            fault_inject_panic,
        })
    }

    /// The settings for this pam.d line: `text` (the config file's contents) with this line's
    /// overrides applied.
    pub fn settings(&self, text: &str) -> Result<Settings, ConfigError> {
        let mut settings = Settings::from_toml(text, &self.config_path)?;
        for (key, value) in &self.overrides {
            settings
                .set(key, value)
                .map_err(|m| error(MODULE_ARGS, m))?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args;
    use crate::config::Reuse;

    #[test]
    fn module_arguments_override_the_file() {
        let a = args("verify config=/tmp/m.toml window=2 reuse=never require").unwrap();
        assert_eq!(a.phase, Phase::Verify);
        assert_eq!(a.config_path, PathBuf::from("/tmp/m.toml"));
        let s = a
            .settings("window = 3\nstate_dir = \"/srv/state\"\n")
            .unwrap();
        assert_eq!(s.window, 2);
        assert_eq!(s.reuse, Reuse::Never);
        assert!(s.require);
        assert_eq!(s.state_dir, PathBuf::from("/srv/state"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        for line in [
            "",
            "split verify",
            "split split",
            "split window=2 window=3",
            "split windw=2",
            "split window=11",
            "split window=-1",
            "split window=x",
            "split reuse=sometimes",
            "split record_dir=relative/dir",
            "split config=",
            "split require=maybe",
            "split max_failures=0",
            "account",
            "account pwdfile=relative",
            "split pwdfile=/etc/dovecot/passwd.pam",
            "split account pwdfile=/x",
        ] {
            assert!(args(line).is_err(), "`{line}` should be refused");
        }
    }
}
