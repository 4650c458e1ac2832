//! Reading what the user types: a line with echo (codes), or a password with echo off.
//!
//! The password is read by `rpassword` from the terminal with echo off (it takes the terminal
//! out of canonical mode and back). Ctrl-C there is a byte it reads: it puts the terminal
//! back only after raising SIGINT, which by its default action would end the command first
//! and leave the terminal without echo. So while the hidden prompt has the terminal, SIGINT
//! does nothing (`signal-hook`, a safe handler: the command has no unsafe code); once
//! `rpassword` has returned, with echo back on, the command ends by SIGINT as it would
//! anywhere else. When stdin is not a terminal, a line is read from it as it is: that is how
//! scripts and tests feed the command.

use super::exit::{Exit, Failure};
use signal_hook::consts::SIGINT;
use signal_hook::{flag, low_level};
use std::io::{self, BufRead, ErrorKind, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// Prints `prompt` on stderr and reads one line from stdin, without its line ending.
/// `Ok(None)` at end of input.
pub fn line(prompt: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    let mut text = Zeroizing::new(String::new());
    let n = io::stdin()
        .lock()
        .read_line(&mut text)
        .map_err(|e| Failure::new(Exit::Error, format!("cannot read stdin: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    Ok(Some(text))
}

/// Like [`line`], with echo off when stdin is a terminal (the prompt on stderr, the input
/// from that terminal). Ctrl-C there ends the command with echo back on.
pub fn hidden(prompt: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    if !io::stdin().is_terminal() {
        return line(prompt);
    }
    sigint_waits_for_the_terminal().map_err(|e| {
        Failure::new(
            Exit::Error,
            format!("cannot guard the terminal against Ctrl-C at the password prompt: {e}"),
        )
    })?;
    let config = rpassword::ConfigBuilder::new()
        .input_file_path("/dev/stdin")
        .output_writer(io::stderr())
        .password_feedback_hide()
        .build();
    SIGINT_ENDS_THE_COMMAND.store(false, Ordering::SeqCst);
    let read = rpassword::prompt_password_with_config(prompt, config);
    SIGINT_ENDS_THE_COMMAND.store(true, Ordering::SeqCst);
    match read {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(e) if e.kind() == ErrorKind::Interrupted => {
            // Ctrl-C: the terminal is as it was; end the command as Ctrl-C does elsewhere.
            let _ = low_level::raise(SIGINT);
            std::process::exit(130)
        }
        Err(e) => Err(Failure::new(
            Exit::Error,
            format!("cannot read the password from the terminal: {e}"),
        )),
    }
}

/// Whether SIGINT ends the command (its default action, emulated). False only while the
/// hidden prompt has the terminal.
static SIGINT_ENDS_THE_COMMAND: AtomicBool = AtomicBool::new(true);

/// Installs, once, the SIGINT handler that does what [`SIGINT_ENDS_THE_COMMAND`] says.
fn sigint_waits_for_the_terminal() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            flag::register_conditional_default(SIGINT, &SIGINT_ENDS_THE_COMMAND)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
}
