//! The `mailmfa` command: reads the command line (`src/cli/command.rs`, clap) and hands it to
//! the subcommand in `src/cli/`. All the work is in the library and in those files.

#![forbid(unsafe_code)]

mod cli;

use cli::command::{self, AppPassword, Cli, Command, Config, Db};
use cli::exit::{CliResult, Exit, Failure};
use cli::Context;
use cli::{app_password, check, db, disable, doctor, enable, man, notify, recovery, serve, status};

fn main() {
    let exit = match run() {
        Ok(()) => Exit::Ok,
        Err(failure) => {
            eprintln!("mailmfa: {failure}");
            failure.exit
        }
    };
    std::process::exit(exit as i32);
}

fn run() -> CliResult {
    let Some(Cli { config, command }) = command::parse(std::env::args_os())? else {
        return Ok(());
    };
    match command {
        Command::Enable(a) => enable::run(&context(config, &a.config)?, &a),
        Command::Disable(a) => disable::run(&context(config, &a.config)?, &a),
        Command::Status(a) => status::status(&context(config, &a.config)?, &a),
        Command::List(a) => status::list(&context(config, &a.config)?, &a),
        Command::AppPassword(AppPassword::Add(a)) => {
            app_password::add(&context(config, &a.config)?, &a)
        }
        Command::AppPassword(AppPassword::List(a)) => {
            app_password::list(&context(config, &a.config)?, &a)
        }
        Command::AppPassword(AppPassword::Revoke(a)) => {
            app_password::revoke(&context(config, &a.config)?, &a)
        }
        Command::RecoveryCodes(a) => recovery::run(&context(config, &a.config)?, &a),
        Command::Notify(a) => notify::run(&context(config, &a.config)?, &a),
        Command::Db(Db::Keygen(a)) => db::keygen(&a),
        Command::Db(a) => match a.config() {
            Some(after) => db::run(&context(config, after)?, &a),
            None => unreachable!("only keygen reads no config"),
        },
        // doctor loads the config itself: a config that does not load is one of its findings.
        Command::Doctor(a) => {
            let config = config.or_else(|| a.config.config.clone());
            doctor::run(&a, config)
        }
        Command::Check(a) => check::run(&a),
        Command::Serve(a) => match a.args.first().map(String::as_str) {
            Some("-h" | "--help") => {
                command::print_help("serve");
                Ok(())
            }
            _ => serve::run(&a.args, config),
        },
        Command::Completions(a) => {
            command::print_completions(a.shell);
            Ok(())
        }
        Command::Manpage(_) => {
            print!("{}", man::render());
            Ok(())
        }
    }
}

/// The settings of `--config` (given before the command or after it, not both), with the
/// module's checks.
fn context(before: Option<String>, after: &Config) -> Result<Context, Failure> {
    let config = match (before, &after.config) {
        (Some(_), Some(_)) => return Err(Failure::usage("`--config` is given twice")),
        (Some(c), None) => Some(c),
        (None, c) => c.clone(),
    };
    Context::load(config.as_deref())
}
