//! Reading what the user types: a line with echo (codes), or a password with echo off.
//!
//! Echo is switched off with `stty -echo` on the terminal (and back on afterwards), so the
//! command needs no unsafe termios call. When stdin is not a terminal, a line is read from it
//! as it is: that is how scripts and tests feed the command.

use super::exit::{Exit, Failure};
use std::io::{self, BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};
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

/// Like [`line`], with echo off when stdin is a terminal.
pub fn hidden(prompt: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    if !io::stdin().is_terminal() {
        return line(prompt);
    }
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !stty("-echo") {
        return Err(Failure::new(
            Exit::Error,
            "cannot switch the terminal's echo off (`stty -echo` failed)",
        ));
    }
    let result = line(prompt);
    stty("echo");
    eprintln!();
    result
}
