//! `mailmfa-panel`: starts the User Panel (see `mailmfa_panel::run`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    mailmfa_panel::run::main(&args)
}
