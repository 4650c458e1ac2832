//! The hidden password prompt in a real terminal. `mailmfa check` reads the password with
//! echo off; typed, it is not shown, and Ctrl-C at the prompt ends the command with the
//! terminal as it was (echo on). Each test runs a shell in a pseudo-terminal with `script`
//! (Debian bsdutils), types into it, and reads the terminal's modes with `stty` (coreutils):
//! from outside while the prompt waits, and in the same terminal after the command ended.

mod cli_support;
mod skip;

use cli_support::*;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

const SERVICE: &str = "mailmfa-prompt-test";
const PROMPT: &str = "Password followed by the code for alice: ";
/// Printed by the shell after `stty -a`, when the session is over.
const DONE: &str = "END-OF-SESSION";
const TIMEOUT: Duration = Duration::from_secs(20);

/// A shell under `script`, in a pseudo-terminal of its own: what it prints is collected by a
/// thread, what is written to `input` is typed on its terminal.
struct Terminal {
    child: Child,
    input: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    /// Runs `commands` with /bin/sh in a new pseudo-terminal. The shell prints its terminal's
    /// name first; a SIGINT from the terminal does not end it (a trap that does nothing), so
    /// it goes on after the command it waits for is interrupted.
    fn start(commands: &str) -> Terminal {
        let script = format!("trap : INT; tty; {commands}; stty -a; echo {DONE}");
        let mut child = Command::new("script")
            .args(["--quiet", "--return", "--command", &script, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("script runs");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            input: child.stdin.take(),
            child,
            output,
            seen: String::new(),
        }
    }

    /// Waits until the terminal has shown `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!(
                    "the terminal never showed {text:?}; it showed:\n{}",
                    self.seen
                ),
            }
        }
    }

    /// Types `bytes` on the terminal.
    fn type_in(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().unwrap();
        input.write_all(bytes).unwrap();
        input.flush().unwrap();
    }

    /// The terminal's device, as `tty` printed it.
    fn device(&self) -> String {
        self.seen
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("/dev/"))
            .unwrap_or_else(|| panic!("no terminal name in:\n{}", self.seen))
            .to_string()
    }

    /// What the shell printed after `marker`, up to the end of the session.
    fn after(&self, marker: &str) -> &str {
        let start = self
            .seen
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in:\n{}", self.seen));
        &self.seen[start..]
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        drop(self.input.take());
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Whether `stty -a` output shows `mode` on (`echo`, not `-echo`).
fn on(stty: &str, mode: &str) -> bool {
    let words: Vec<&str> = stty.split([' ', ';', '\r', '\n']).collect();
    let off = format!("-{mode}");
    assert!(
        words.contains(&mode) || words.contains(&off.as_str()),
        "no {mode} in: {stty}"
    );
    words.contains(&mode)
}

/// `stty -a` of another terminal, read from outside it.
fn modes_of(device: &str) -> String {
    let out = Command::new("stty")
        .args(["-F", device, "-a"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stty -F {device}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until the command at the prompt has taken echo off its terminal.
fn wait_until_echo_is_off(device: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while on(&modes_of(device), "echo") {
        assert!(
            Instant::now() < deadline,
            "echo never went off at the password prompt"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `mailmfa check` of alice, against a PAM service that denies every login (`check` wants
/// the service file before it prompts), in a new terminal, once its password prompt has
/// taken echo off (the terminal had it on before: script's default). `None` when `script` or
/// `stty` is missing.
fn check_at_the_prompt(env: &Env) -> Option<Terminal> {
    if !(have_tool("script") && have_tool("stty")) {
        return None;
    }
    let confdir = env.dir.path().join("pam.d");
    fs::create_dir(&confdir).unwrap();
    fs::write(
        confdir.join(SERVICE),
        "auth required pam_deny.so\naccount required pam_deny.so\n",
    )
    .unwrap();
    let quote = |p: &Path| format!("'{}'", p.to_str().unwrap().replace('\'', r"'\''"));
    let mut term = Terminal::start(&format!(
        "{} --config {} check --service {SERVICE} --confdir {} alice; echo \"exit=$?\"",
        quote(Path::new(MAILMFA)),
        quote(&env.config),
        quote(&confdir),
    ));
    term.wait_for(PROMPT);
    wait_until_echo_is_off(&term.device());
    Some(term)
}

/// The command's exit status and the terminal's modes after it, as the shell printed them.
fn after_the_command(term: &Terminal, exit: &str) -> String {
    let after = term.after("exit=");
    assert!(
        after.starts_with(&format!("exit={exit}\r"))
            || after.starts_with(&format!("exit={exit}\n")),
        "exit status {exit} expected:\n{}",
        term.seen
    );
    for mode in ["echo", "icanon", "isig"] {
        assert!(on(after, mode), "{mode} is off after the prompt:\n{after}");
    }
    after.to_string()
}

#[test]
fn ctrl_c_at_the_hidden_prompt_ends_the_command_with_echo_back_on() {
    let env = Env::new();
    let Some(mut term) = check_at_the_prompt(&env) else {
        return;
    };
    term.type_in(b"half a pass");
    term.type_in(b"\x03");
    term.wait_for(DONE);

    // Ended as SIGINT ends a command (128 + 2), with echo, canonical input and signals back.
    after_the_command(&term, "130");
    assert!(!term.seen.contains("half a pass"), "{}", term.seen);
}

#[test]
fn a_typed_password_is_not_shown_and_echo_comes_back() {
    let env = Env::new();
    let Some(mut term) = check_at_the_prompt(&env) else {
        return;
    };
    term.type_in(b"T9D3K!px189145\r");
    term.wait_for(DONE);

    // pam_deny refused it (7): the password was read and handed to the stack, not shown.
    after_the_command(&term, "7");
    assert!(term.seen.contains("result: failure"), "{}", term.seen);
    assert!(!term.seen.contains("T9D3K!px"), "{}", term.seen);
}
