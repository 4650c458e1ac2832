//! A small command-line parser: `--name`, `--name VALUE`, `--name=VALUE`, `--` and positional
//! arguments, checked against what each subcommand accepts. Every subcommand also takes
//! `--config PATH` and `-h`/`--help`.

use super::exit::Failure;
use std::collections::BTreeMap;
use std::ffi::OsString;

/// What a subcommand accepts.
pub struct Spec {
    /// The subcommand's name, for messages.
    pub command: &'static str,
    /// Options without a value.
    pub flags: &'static [&'static str],
    /// Options that take a value.
    pub values: &'static [&'static str],
    /// Names of the positional arguments, all required, in order.
    pub positionals: &'static [&'static str],
}

/// A parsed command line.
#[derive(Debug, Default)]
pub struct Parsed {
    flags: Vec<String>,
    values: BTreeMap<String, String>,
    /// The positional arguments, as many as the spec names.
    pub positionals: Vec<String>,
    /// `-h` or `--help` was given.
    pub help: bool,
}

impl Parsed {
    /// Whether the flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// The value of `--name VALUE`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Turns the OS arguments into strings; a non-UTF-8 argument is a usage error.
pub fn strings(args: Vec<OsString>) -> Result<Vec<String>, Failure> {
    args.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|_| Failure::usage("an argument is not valid UTF-8"))
        })
        .collect()
}

/// Parses `args` (after the subcommand name) against `spec`.
pub fn parse(args: &[String], spec: &Spec) -> Result<Parsed, Failure> {
    let mut parsed = Parsed::default();
    let mut rest = args.iter();
    let mut options_done = false;
    while let Some(arg) = rest.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            parsed.positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            parsed.help = true;
            continue;
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(Failure::usage(format!(
                "{}: unknown option `{arg}` (see --help)",
                spec.command
            )));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "config" || spec.values.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => rest.next().cloned().ok_or_else(|| {
                    Failure::usage(format!("{}: `--{name}` needs a value", spec.command))
                })?,
            };
            if parsed.values.insert(name.to_string(), value).is_some() {
                return Err(Failure::usage(format!(
                    "{}: `--{name}` is given twice",
                    spec.command
                )));
            }
        } else if spec.flags.contains(&name) {
            if inline.is_some() {
                return Err(Failure::usage(format!(
                    "{}: `--{name}` takes no value",
                    spec.command
                )));
            }
            if parsed.flag(name) {
                return Err(Failure::usage(format!(
                    "{}: `--{name}` is given twice",
                    spec.command
                )));
            }
            parsed.flags.push(name.to_string());
        } else {
            return Err(Failure::usage(format!(
                "{}: unknown option `--{name}` (see --help)",
                spec.command
            )));
        }
    }
    if !parsed.help && parsed.positionals.len() != spec.positionals.len() {
        let wanted = if spec.positionals.is_empty() {
            "no arguments".to_string()
        } else {
            spec.positionals.join(" ")
        };
        return Err(Failure::usage(format!(
            "{}: expected {wanted}, got {} argument(s) (see --help)",
            spec.command,
            parsed.positionals.len()
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        command: "enable",
        flags: &["json", "force"],
        values: &["code"],
        positionals: &["LOGIN"],
    };

    fn run(line: &str) -> Result<Parsed, Failure> {
        parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
            &SPEC,
        )
    }

    #[test]
    fn options_and_positionals() {
        let p = run("alice --json --code=123456 --config /x.toml").unwrap();
        assert!(p.flag("json") && !p.flag("force"));
        assert_eq!(p.value("code"), Some("123456"));
        assert_eq!(p.value("config"), Some("/x.toml"));
        assert_eq!(p.positionals, ["alice"]);
        assert_eq!(run("--code 1 -- -alice").unwrap().positionals, ["-alice"]);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for line in [
            "",
            "a b",
            "a --bogus",
            "a --json=1",
            "a --code",
            "a --json --json",
            "a -x",
        ] {
            assert!(run(line).is_err(), "{line}");
        }
    }
}
