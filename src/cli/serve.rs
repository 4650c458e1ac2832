//! `mailmfa serve [ARGS]`: starts the web panel, `mailmfa-panel`, in place of this process.
//! The panel is a separate program (its own dependencies stay out of the command and the
//! module); this only finds it — beside the running `mailmfa`, else on PATH — and execs it
//! with `--config PATH` when one was given, then the other arguments unchanged.

use super::exit::{CliResult, Exit, Failure};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The panel's program name.
pub const PANEL: &str = "mailmfa-panel";

/// Runs `serve`: replaces this process with the panel; returns only when that failed.
pub fn run(args: &[String], config: Option<String>) -> CliResult {
    let program = find().ok_or_else(|| {
        Failure::new(
            Exit::Error,
            format!(
                "`{PANEL}` was found neither beside this mailmfa nor on PATH: install the \
                 mailmfa-panel package (or build it: cargo build -p mailmfa-panel --release)"
            ),
        )
    })?;
    let mut command = Command::new(&program);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args);
    let e = command.exec();
    Err(Failure::new(
        Exit::Error,
        format!("cannot start {}: {e}", program.display()),
    ))
}

/// The panel beside the running executable, else the first on PATH.
fn find() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(PANEL)));
    let on_path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    beside
        .into_iter()
        .chain(std::env::split_paths(&on_path).map(|dir| dir.join(PANEL)))
        .find(|path| is_program(path))
}

/// Whether `path` is a file someone may execute.
fn is_program(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
