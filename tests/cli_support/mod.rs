//! Shared helpers of the `mailmfa` command tests (tests/cli_*.rs): a temporary installation
//! (config, record and state directories), running the built command, and computing codes
//! from what the command wrote, with the library's own record parser.

#![allow(dead_code)]

use mailmfa::record::Record;
use mailmfa::store::pending::Pending;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The built command.
pub const MAILMFA: &str = env!("CARGO_BIN_EXE_mailmfa");

/// A temporary installation: `mailmfa.toml`, `users/` and `state/` (mode 0700) in a temp dir.
pub struct Env {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// `record_dir`.
    pub users: PathBuf,
    /// `state_dir`.
    pub state: PathBuf,
}

impl Env {
    /// An installation with default settings and issuer "Example Mail".
    pub fn new() -> Env {
        Env::with_settings("")
    }

    /// An installation whose config has `extra` lines too.
    pub fn with_settings(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        let state = dir.path().join("state");
        for d in [&users, &state] {
            fs::create_dir(d).unwrap();
            fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let config = dir.path().join("mailmfa.toml");
        fs::write(
            &config,
            format!(
                "record_dir = \"{}\"\nstate_dir = \"{}\"\nissuer = \"Example Mail\"\n{extra}",
                users.display(),
                state.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        Env {
            dir,
            config,
            users,
            state,
        }
    }

    /// `mailmfa --config CFG ARGS...`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(MAILMFA);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// Runs the command with `stdin` as its input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may exit before reading (a usage error): ignore a broken pipe.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        Run::from(child.wait_with_output().unwrap())
    }

    /// Runs the command with empty input.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, "")
    }

    /// Path of a user's record.
    pub fn record_path(&self, login: &str) -> PathBuf {
        self.users.join(format!("{login}.toml"))
    }

    /// Path of a user's pending enrolment.
    pub fn pending_path(&self, login: &str) -> PathBuf {
        self.users.join("pending").join(format!("{login}.toml"))
    }

    /// Path of a user's state.
    pub fn state_path(&self, login: &str) -> PathBuf {
        self.state.join(format!("{login}.state"))
    }

    /// The user's record as the module would read it, if any.
    pub fn record(&self, login: &str) -> Option<Record> {
        let text = fs::read_to_string(self.record_path(login)).ok()?;
        Some(Record::parse(&text).expect("the command wrote a valid record"))
    }

    /// The user's pending enrolment, if any.
    pub fn pending(&self, login: &str) -> Option<Pending> {
        let text = fs::read_to_string(self.pending_path(login)).ok()?;
        Some(Pending::parse(&text).expect("the command wrote a valid pending enrolment"))
    }

    /// `enable LOGIN --begin --json`, then `--confirm` with the code of the current step.
    /// Returns the record and the step whose code confirmed it.
    pub fn enabled(&self, login: &str) -> (Record, u64) {
        let begin = self.run(&["enable", login, "--begin", "--json"]);
        begin.assert_code(0);
        let record = self.pending(login).unwrap().record;
        let step = current_step(&record);
        self.confirm(login, &record, &[]).assert_code(0);
        (record, step)
    }

    /// The interactive `enable LOGIN ARGS...`, answered with the code of the current step.
    /// Returns the run and the URI.
    pub fn enable_typing_the_code(&self, login: &str, args: &[&str]) -> (Run, String) {
        self.enable_interactively(login, args, |record| {
            format!("{}\n", code(record, current_step(record)))
        })
    }

    /// `enable LOGIN --begin ARGS... --json`, which must succeed. Returns its JSON and the
    /// record an authenticator app makes of its URI.
    pub fn begin(&self, login: &str, args: &[&str]) -> (serde_json::Value, Record) {
        let run = self.run(&[&["enable", login, "--begin"][..], args, &["--json"]].concat());
        run.assert_code(0);
        let json = run.json();
        let record = record_of_uri(json["uri"].as_str().expect("a URI"));
        (json, record)
    }

    /// `enable LOGIN --confirm CODE ARGS...` with the code of `record`'s current step.
    pub fn confirm(&self, login: &str, record: &Record, args: &[&str]) -> Run {
        let code = code(record, current_step(record));
        self.run(&[&["enable", login, "--confirm", &code][..], args].concat())
    }

    /// `--confirm` with `record`'s current code, which must succeed; then LOGIN's active
    /// record holds `record`'s secret.
    pub fn confirm_active(&self, login: &str, record: &Record) {
        self.confirm(login, record, &[]).assert_code(0);
        self.assert_secret(login, record);
    }

    /// Asserts that LOGIN's active record holds `record`'s secret.
    pub fn assert_secret(&self, login: &str, record: &Record) {
        assert_eq!(
            self.record(login).expect("a record").secret_base32(),
            record.secret_base32()
        );
    }

    /// Runs the interactive `enable LOGIN ARGS...`: reads stdout up to the URI line, then
    /// types what `answer` returns for the record of that URI. Returns the run and the URI.
    pub fn enable_interactively(
        &self,
        login: &str,
        args: &[&str],
        answer: impl FnOnce(&Record) -> String,
    ) -> (Run, String) {
        let mut child = self
            .command(&[&["enable", login][..], args].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        let uri = loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "no URI in: {seen}"
            );
            seen.push_str(&line);
            if let Some(uri) = line.trim().strip_prefix("URI:") {
                break uri.trim().to_string();
            }
        };
        let input = answer(&record_of_uri(&uri));
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let output = child.wait_with_output().unwrap();
        let mut run = Run::from(output);
        run.stdout = seen + &rest;
        (run, uri)
    }
}

/// One run of the command.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().expect("exited"),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stderr mentions `text`.
    pub fn assert_stderr(&self, text: &str) -> &Run {
        assert_shows("stderr", &self.stderr, text);
        self
    }

    /// Asserts that stdout shows `text`.
    pub fn assert_stdout(&self, text: &str) -> &Run {
        assert_shows("stdout", &self.stdout, text);
        self
    }

    /// Stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// `enable LOGIN --begin --replace --code CODE`: a new secret for LOGIN, allowed by a code of
/// the active one.
pub fn replace_args<'a>(login: &'a str, old_code: &'a str) -> [&'a str; 6] {
    ["enable", login, "--begin", "--replace", "--code", old_code]
}

/// Asserts that `stream` (named `name` in the failure) holds `text`.
fn assert_shows(name: &str, stream: &str, text: &str) {
    assert!(stream.contains(text), "{name} lacks {text:?}: {stream}");
}

/// Unix time now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The record's time step now.
pub fn current_step(record: &Record) -> u64 {
    record.params().step_at(now())
}

/// The record's code of `step`.
pub fn code(record: &Record, step: u64) -> String {
    String::from_utf8(record.params().code(step).to_vec()).unwrap()
}

/// A code that matches no step near now.
pub fn wrong_code(record: &Record, n: u32) -> String {
    let step = current_step(record);
    let near: Vec<String> = (step.saturating_sub(3)..=step + 3)
        .map(|s| code(record, s))
        .collect();
    (0..)
        .map(|i| format!("{:06}", (123_456 + 111_111 * u64::from(n) + i) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// The `secret` parameter of an `otpauth://` URI.
pub fn secret_of_uri(uri: &str) -> String {
    let query = uri.split_once('?').expect("a query").1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .expect("a secret parameter")
        .to_string()
}

/// The record an authenticator app makes of an `otpauth://` URI (SHA1, 6 digits, 30 s).
pub fn record_of_uri(uri: &str) -> Record {
    assert!(uri.contains("&algorithm=SHA1&digits=6&period=30"), "{uri}");
    Record::parse(&format!(
        "version = 1\nsecret = \"{}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\ncreated = 0\n",
        secret_of_uri(uri)
    ))
    .unwrap()
}

/// Whether an external tool is installed; when not, `crate::skip::missing` (fails the test
/// under CI, skips it loudly elsewhere).
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    crate::skip::require(
        found,
        &format!("{name} (scripts/install-deps.sh installs it)"),
    )
}

/// What `zbarimg` reads from an image.
pub fn zbar(image: &Path) -> String {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zbarimg found no code in {}",
        image.display()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

/// Every file under `dir`, read as text (lossy), joined: to search for secrets.
pub fn all_files_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text.push_str(&all_files_text(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(&fs::read(&path).unwrap()));
        }
    }
    text
}

/// Runs `mailmfa --config CONFIG ARGS...` with no input, for a world not made by [`Env`]
/// (such as the libpam tests' fixture, whose pam.d services use the built module).
pub fn run_with_config(config: &Path, args: &[&str]) -> Run {
    Run::from(
        Command::new(MAILMFA)
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

/// Asserts that command output holds no stored hash (`sha256$...`) and no `hash` key.
pub fn assert_no_hash(text: &str) {
    assert!(
        !text.contains("sha256$") && !text.contains("\"hash\""),
        "output shows a hash: {text}"
    );
}
