//! The pool of one scale: the enrolled mailboxes for all three modules (mailmfa records,
//! pam_oath's usersfile, google-auth's secret files), generated once and cached across runs,
//! and the untimed resets of a mailbox's state between logins.

use super::cases::Module;
use super::mailboxes::{
    ctx, ga_text, mkdir_0700, oath_line, record_text, unix_now, user_name, write_file,
};
use super::{PERIOD, POOL_FORMAT, RHOST};
use mailmfa::state::State;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The enrolled mailboxes of one scale, for all three modules.
pub(super) struct Pool {
    pub(super) n: usize,
    pub(super) dir: PathBuf,
    /// mailmfa's state directory: recreated at every run, outside `dir` (see `--no-image`).
    pub(super) state: PathBuf,
    /// pam_oath's directory (usersfile, its lock and temp files), recreated at every run.
    pub(super) oath_dir: PathBuf,
    /// The spools of the [`Module::Notify`] stacks (one directory each), made by
    /// [`Pool::make_spools`] at every run.
    pub(super) spools: PathBuf,
}

impl Pool {
    pub(super) fn mm(&self) -> PathBuf {
        self.dir.join("mailmfa")
    }
    fn mm_config(&self) -> PathBuf {
        self.mm().join("mailmfa.toml")
    }
    /// The `config=` of a mailmfa stack: `mailmfa.toml`, or that plus a `[notify]` table, or
    /// the records in SQL.
    pub(super) fn config_of(&self, module: Module) -> PathBuf {
        match module {
            Module::Notify(spool) => self.mm().join(format!("{}.toml", spool.key())),
            Module::Sql(engine) => self.mm().join(format!("{}.toml", engine.key())),
            _ => self.mm_config(),
        }
    }
    pub(super) fn mm_users(&self) -> PathBuf {
        self.mm().join("users")
    }
    fn mm_state(&self) -> PathBuf {
        self.state.clone()
    }
    pub(super) fn ga(&self) -> PathBuf {
        self.dir.join("google-auth")
    }
    pub(super) fn oath(&self) -> PathBuf {
        self.oath_dir.join("oath.users")
    }
    fn state_file(&self, i: usize) -> PathBuf {
        self.mm_state().join(format!("{}.state", user_name(i)))
    }

    /// Generates what is missing: records and secret files are cached across runs (a marker
    /// names the format and count); the state directory and the usersfile start fresh.
    pub(super) fn generate(&self) -> Result<Duration, String> {
        let t = Instant::now();
        let marker = self.dir.join(".complete");
        let want = format!("{POOL_FORMAT} {}\n", self.n);
        if fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
            let _ = fs::remove_dir_all(&self.dir);
            for d in [self.dir.clone(), self.mm(), self.mm_users(), self.ga()] {
                ctx(mkdir_0700(&d), || d.display().to_string())?;
            }
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 8)
                * 2;
            let created = unix_now();
            let failed = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        s.spawn(move || -> io::Result<()> {
                            let (users, ga) = (self.mm_users(), self.ga());
                            for i in (t..self.n).step_by(threads) {
                                let name = user_name(i);
                                write_file(
                                    &users.join(format!("{name}.toml")),
                                    record_text(i, created).as_bytes(),
                                )?;
                                write_file(&ga.join(&name), ga_text(i, false).as_bytes())?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().expect("generator thread").err())
                    .next()
            });
            if let Some(e) = failed {
                return Err(format!("generating {}: {e}", self.dir.display()));
            }
            ctx(write_file(&marker, want.as_bytes()), || {
                marker.display().to_string()
            })?;
        }
        for d in [self.mm_state(), self.oath_dir.clone()] {
            let _ = fs::remove_dir_all(&d);
            ctx(mkdir_0700(&d), || d.display().to_string())?;
        }
        let config = format!(
            "record_dir = \"{}\"\nstate_dir = \"{}\"\n",
            self.mm_users().display(),
            self.mm_state().display()
        );
        ctx(write_file(&self.mm_config(), config.as_bytes()), || {
            self.mm_config().display().to_string()
        })?;
        self.write_notify_configs(&config)?;
        self.reset_oath()?;
        Ok(t.elapsed())
    }

    /// Rewrites the pam_oath usersfile: every mailbox unused (no last-OTP time).
    pub(super) fn reset_oath(&self) -> Result<(), String> {
        let mut text = String::with_capacity(self.n * 80);
        for i in 0..self.n {
            text.push_str(&oath_line(i));
        }
        let tmp = self.oath_dir.join(".oath.users.tmp");
        ctx(write_file(&tmp, text.as_bytes()), || {
            tmp.display().to_string()
        })?;
        ctx(fs::rename(&tmp, self.oath()), || {
            self.oath().display().to_string()
        })
    }

    /// Makes mailbox `i` one that never logged in: no mailmfa state, no lock file.
    pub(super) fn forget_mailmfa(&self, i: usize) {
        let _ = fs::remove_file(self.state_file(i));
        let _ = fs::remove_file(self.mm_state().join(format!("{}.lock", user_name(i))));
    }

    /// Makes mailbox `i` one that logged in from this client two steps before `step`: its
    /// lock file exists and its state (in the format of `src/state.rs`) holds that older step,
    /// so the next right code is a first use that rewrites the state.
    pub(super) fn returning_mailmfa(&self, i: usize, step: u64) -> Result<(), String> {
        let lock = self.mm_state().join(format!("{}.lock", user_name(i)));
        if !lock.exists() {
            ctx(write_file(&lock, b""), || lock.display().to_string())?;
        }
        let text = format!(
            "version = 1\nlast_step = {}\nstep_clients = [\"{RHOST}\"]\nlast_success = {}\nlast_client = \"{RHOST}\"\n",
            step - 2,
            (step - 2) * PERIOD + 5
        );
        let path = self.state_file(i);
        ctx(write_file(&path, text.as_bytes()), || {
            path.display().to_string()
        })
    }

    /// Rewrites mailbox `i`'s google-auth file, with or without `DISALLOW_REUSE`.
    pub(super) fn reset_ga(&self, i: usize, disallow_reuse: bool) -> Result<(), String> {
        let path = self.ga().join(user_name(i));
        ctx(
            write_file(&path, ga_text(i, disallow_reuse).as_bytes()),
            || path.display().to_string(),
        )
    }

    pub(super) fn read_state(&self, i: usize) -> Option<State> {
        fs::read_to_string(self.state_file(i))
            .ok()
            .and_then(|t| State::parse(&t).ok())
    }
}
