//! What the command line's one definition (src/cli/command.rs) makes besides `--help`: the
//! man page, which must be the committed man/mailmfa.1, and the shell completions the package
//! installs, which bash must load and use.

mod cli_support;
mod skip;

use cli_support::*;
use std::process::Command;

fn mailmfa(args: &[&str]) -> Run {
    Run::from(Command::new(MAILMFA).args(args).output().unwrap())
}

#[test]
fn the_committed_man_page_is_the_one_the_command_prints() {
    let run = mailmfa(&["manpage"]);
    run.assert_code(0);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/mailmfa.1")).unwrap();
    assert!(
        run.stdout == committed,
        "man/mailmfa.1 is not what `mailmfa manpage` prints: run \
         `cargo run -q --bin mailmfa -- manpage > man/mailmfa.1`"
    );
}

#[test]
fn completions_offer_every_command_and_no_hidden_one() {
    for shell in ["bash", "zsh", "fish"] {
        let run = mailmfa(&["completions", shell]);
        run.assert_code(0);
        for command in [
            "enable",
            "app-password",
            "recovery-codes",
            "doctor",
            "notify",
        ] {
            assert!(run.stdout.contains(command), "{shell}: {command}");
        }
        assert!(
            !run.stdout.contains("manpage"),
            "{shell}: hidden commands stay hidden"
        );
    }
    mailmfa(&["completions", "tcsh"])
        .assert_code(2)
        .assert_stderr("bash, zsh or fish");
    // Not in `--help`: only the package and the docs need them.
    let help = mailmfa(&["--help"]);
    assert!(!help.stdout.contains("completions") && !help.stdout.contains("manpage"));
}

#[test]
fn bash_completes_commands_actions_and_options() {
    let script = mailmfa(&["completions", "bash"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mailmfa");
    std::fs::write(&file, script).unwrap();
    // COMP_WORDS as bash-completion passes them, the word being completed last.
    let complete = |words: &str| {
        let last = words.split(' ').next_back().unwrap_or_default();
        let count = words.split(' ').count() - 1;
        let line = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={count}; _mailmfa mailmfa '{last}' x; \
             echo \"${{COMPREPLY[*]}}\"",
            file.display()
        );
        let out = Command::new("bash").args(["-c", &line]).output().unwrap();
        assert!(out.status.success(), "{words}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(complete("mailmfa recov"), "recovery-codes");
    assert_eq!(complete("mailmfa app-password r"), "revoke");
    assert_eq!(
        complete("mailmfa --config /x enable alice --qr-s"),
        "--qr-svg"
    );
    assert_eq!(complete("mailmfa notify --re"), "--retry-now");
}
