//! The `mailmfa` command: reads the command line and hands it to the subcommand in
//! `src/cli/`. All the work is in the library and in those files.

#![forbid(unsafe_code)]

mod cli;

use cli::args::{self, Parsed, Spec};
use cli::exit::{CliResult, Exit, Failure};
use cli::{
    app_password, check, disable, doctor, enable, help, notify, recovery, serve, status, Context,
};

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
    let mut argv = args::strings(std::env::args_os().skip(1).collect())?;
    // `--config PATH` may also come before the command.
    let mut config = None;
    while let Some(first) = argv.first() {
        if first == "--config" && argv.len() > 1 {
            config = Some(argv.remove(1));
            argv.remove(0);
        } else if let Some(path) = first.strip_prefix("--config=") {
            config = Some(path.to_string());
            argv.remove(0);
        } else {
            break;
        }
    }
    let Some(command) = argv.first().cloned() else {
        print!("{}", help::main());
        return Err(Failure::usage("name a command"));
    };
    let rest = &argv[1..];
    match command.as_str() {
        "-h" | "--help" => print!("{}", help::main()),
        "-V" | "--version" => println!(
            "mailmfa {} ({})",
            env!("CARGO_PKG_VERSION"),
            env!("MAILMFA_BUILD_REV")
        ),
        "help" => match rest.first() {
            None => print!("{}", help::main()),
            Some(name) => print!(
                "{}",
                help::command(name)
                    .ok_or_else(|| Failure::usage(format!("no command `{name}`")))?
            ),
        },
        "enable" => with_context(rest, &enable::SPEC, config, enable::run)?,
        "disable" => with_context(rest, &disable::SPEC, config, disable::run)?,
        "status" => with_context(rest, &status::STATUS_SPEC, config, status::status)?,
        "list" => with_context(rest, &status::LIST_SPEC, config, status::list)?,
        "app-password" => match app_password::action(rest)? {
            Some(action) => with_context(action.args, action.spec, config, action.run)?,
            None => print!("{}", help::command("app-password").unwrap_or_default()),
        },
        "recovery-codes" => with_context(rest, &recovery::SPEC, config, recovery::run)?,
        "notify" => with_context(rest, &notify::SPEC, config, notify::run)?,
        "doctor" => {
            let parsed = args::parse(rest, &doctor::SPEC)?;
            if parsed.help {
                print!("{}", help::command("doctor").unwrap_or_default());
                return Ok(());
            }
            doctor::run(&parsed, config)?
        }
        "serve" => match rest.first().map(String::as_str) {
            Some("-h" | "--help") => print!("{}", help::command("serve").unwrap_or_default()),
            _ => serve::run(rest, config)?,
        },
        "check" => {
            let parsed = args::parse(rest, &check::SPEC)?;
            if parsed.help {
                print!("{}", help::command("check").unwrap_or_default());
                return Ok(());
            }
            check::run(&parsed)?
        }
        other => {
            return Err(Failure::usage(format!(
                "no command `{other}` (see mailmfa --help)"
            )))
        }
    }
    Ok(())
}

/// Parses a subcommand's arguments, loads the config and runs it.
fn with_context(
    rest: &[String],
    spec: &Spec,
    config: Option<String>,
    run: fn(&Context, &Parsed) -> CliResult,
) -> CliResult {
    let parsed = args::parse(rest, spec)?;
    if parsed.help {
        print!("{}", help::command(spec.command).unwrap_or_default());
        return Ok(());
    }
    let config = match (config, parsed.value("config")) {
        (Some(_), Some(_)) => return Err(Failure::usage("`--config` is given twice")),
        (Some(c), None) => Some(c),
        (None, c) => c.map(str::to_string),
    };
    let ctx = Context::load(config.as_deref())?;
    run(&ctx, &parsed)
}
