//! The man page mailmfa(1), made with clap_mangen from the command line's definition
//! ([`super::command`]): the command's NAME, SYNOPSIS (with a line per subcommand),
//! DESCRIPTION and OPTIONS, a COMMANDS section with each subcommand's long help and options as
//! its `--help` shows them, EXIT STATUS from the table under every `--help`, and the sections
//! no option describes (files, audit, examples).
//!
//! `mailmfa manpage` prints it. man/mailmfa.1 is that output, committed so that the source
//! tree has the page and the package takes it from there; a test checks that the two agree.

use super::command::command;
use super::exit::EXIT_CODES_HELP;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use std::io::{self, Write};

/// What the roff crate puts before everything it writes (the apostrophe string); the page
/// has it once, at the top.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// The first lines of the page: where it comes from.
const HEADER: &str = "\
.\\\" mailmfa(1). Made by `mailmfa manpage` from the command line's definition
.\\\" (src/cli/command.rs, src/cli/man.rs): edit those, then run
.\\\" `cargo run -q --bin mailmfa -- manpage > man/mailmfa.1`. A test checks that they agree.
";

/// The roff source of mailmfa(1).
pub fn render() -> String {
    let mut cmd = command();
    cmd.build();
    let man = page(&cmd, &[]);
    let mut out = String::from(HEADER);
    out += PREAMBLE;
    out += &section(|w| man.render_title(w));
    out += &section(|w| man.render_name_section(w));
    out += &section(|w| man.render_synopsis_section(w));
    for (_, sub) in subcommands(&cmd).filter(|(_, sub)| !sub.has_subcommands()) {
        out += ".br\n";
        out += &body(|w| page(sub, HIDDEN).render_synopsis_section(w));
    }
    out += &section(|w| man.render_description_section(w));
    out += ".SH COMMANDS\n";
    for (path, sub) in subcommands(&cmd) {
        let sub_page = page(sub, HIDDEN);
        out += &roff(|r| {
            r.control("SS", [path.as_str()]);
        });
        out += &body(|w| sub_page.render_description_section(w));
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            out += &body(|w| sub_page.render_options_section(w));
        }
    }
    out += &section(|w| man.render_options_section(w));
    out += &roff(exit_status);
    out += &roff(files);
    out += &roff(audit);
    out += &roff(examples);
    out += &roff(see_also);
    out
}

/// What OPTIONS describes once, not under every subcommand.
const HIDDEN: &[&str] = &["help", "config"];

/// A clap_mangen page of `cmd`, without the arguments `hidden`.
fn page(cmd: &clap::Command, hidden: &[&str]) -> Man {
    let mut cmd = cmd.clone();
    for &id in hidden {
        if cmd.get_arguments().any(|a| a.get_id() == id) {
            cmd = cmd.mut_arg(id, |a| a.hide(true));
        }
    }
    Man::new(cmd)
        .title("MAILMFA")
        .section("1")
        .date("2026")
        .source(concat!("mailmfa ", env!("CARGO_PKG_VERSION")))
        .manual("System Administration")
}

/// The visible subcommands, depth first, with their paths (`app-password add`); not `help`.
fn subcommands(cmd: &clap::Command) -> impl Iterator<Item = (String, &clap::Command)> {
    fn walk<'a>(cmd: &'a clap::Command, prefix: &str, out: &mut Vec<(String, &'a clap::Command)>) {
        let mut subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
        subs.sort_by_key(|sub| sub.get_display_order());
        for sub in subs {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let path = format!("{prefix}{}", sub.get_name());
            out.push((path.clone(), sub));
            walk(sub, &format!("{path} "), out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out.into_iter()
}

/// What a clap_mangen renderer wrote, without the preamble.
fn section(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let mut buf = Vec::new();
    render(&mut buf).expect("writing to memory");
    let text = String::from_utf8(buf).expect("roff from UTF-8 text");
    text.strip_prefix(PREAMBLE).unwrap_or(&text).to_string()
}

/// A section's body: what clap_mangen wrote, without the preamble and the `.SH` line.
fn body(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let text = section(render);
    match text.split_once('\n') {
        Some((first, rest)) if first.starts_with(".SH ") => rest.to_string(),
        _ => text,
    }
}

/// Roff written here, without the preamble.
fn roff(write: impl FnOnce(&mut Roff)) -> String {
    let mut r = Roff::new();
    write(&mut r);
    section(|w| r.to_writer(w))
}

/// EXIT STATUS: the table every `--help` ends with.
fn exit_status(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in EXIT_CODES_HELP.lines().skip(1) {
        let line = line.trim();
        match line.split_once("  ") {
            Some((code, text)) if code.bytes().all(|b| b.is_ascii_digit()) => {
                codes.push((code.to_string(), text.trim().to_string()))
            }
            _ => {
                if let Some((_, text)) = codes.last_mut() {
                    text.push(' ');
                    text.push_str(line);
                }
            }
        }
    }
    for (code, text) in codes {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(text)]);
    }
}

/// A `.TP` entry: a bold term, then its text.
fn entry(r: &mut Roff, term: &str, text: Vec<Inline>) {
    r.control("TP", []);
    r.text([bold(term)]);
    r.text(text);
}

fn files(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    entry(
        r,
        "/usr/sbin/mailmfa",
        vec![roman(
            "The command as the Debian package installs it (scripts/install.sh: \
             /usr/local/sbin/mailmfa).",
        )],
    );
    entry(
        r,
        "/etc/mailmfa/mailmfa.toml",
        vec![
            roman("Settings shared with the module; an empty file means the defaults. Every key: "),
            bold("mailmfa.toml"),
            roman("(5)."),
        ],
    );
    entry(
        r,
        "/var/lib/mailmfa/users/LOGIN.toml",
        vec![roman(
            "The record: the secret and its parameters, the hashes of app passwords and recovery \
             codes (root, 0600). Directory record_dir.",
        )],
    );
    entry(
        r,
        "/var/lib/mailmfa/users/pending/LOGIN.toml",
        vec![roman("A pending enrolment (root, 0600).")],
    );
    entry(
        r,
        "/var/lib/mailmfa/state/LOGIN.state",
        vec![roman(
            "The state: last accepted step and client, recent failed codes, used recovery codes, \
             last use of each app password. Directory state_dir.",
        )],
    );
    entry(
        r,
        "/var/spool/mailmfa/",
        vec![roman(
            "The notifications' spool ([notify] spool_dir; root, or record_owner, 0700): new/LOGIN \
             (events waiting, one line each), cur/, out/, held/, sent/ (the notifier's).",
        )],
    );
    entry(
        r,
        "/lib/systemd/system/mailmfa-notify.{service,path,timer}",
        vec![roman(
            "The notifier's units as the Debian package installs them (enabled by the admin \
             only; source tree: contrib/systemd/).",
        )],
    );
    entry(
        r,
        "/usr/share/bash-completion/completions/mailmfa",
        vec![roman(
            "Completion of commands and options for bash, and likewise \
             /usr/share/zsh/vendor-completions/_mailmfa for zsh and \
             /usr/share/fish/vendor_completions.d/mailmfa.fish for fish, from the package \
             (mailmfa completions SHELL prints them).",
        )],
    );
}

fn audit(r: &mut Roff) {
    r.control("SH", ["AUDIT"]);
    r.text([roman(
        "Every enable, confirm, replace and disable, done or refused, and every app password \
         added or revoked and recovery code set made (action=app-password-add, \
         app-password-revoke, recovery-codes), is sent to syslog (facility authpriv, priority \
         notice, ident mailmfa) as one line such as",
    )]);
    r.control("PP", []);
    r.control("RS", []);
    r.text([bold(
        "action=enable-confirm user=alice@example.com face=command by=root uid=0 result=ok",
    )]);
    r.control("RE", []);
    r.control("PP", []);
    r.text([roman(
        "with face= command, panel, api or admin (who made the change: this command or the web \
         panel), client= the panel client's address when known, sudo_user= when run through \
         sudo, replace=yes and force=yes when they apply, and reason= when refused. It never \
         holds a secret or a code.",
    )]);
}

fn examples(r: &mut Roff) {
    r.control("SH", ["EXAMPLES"]);
    r.control("nf", []);
    for line in [
        "mailmfa enable alice@example.com",
        "mailmfa enable alice@example.com --begin --json",
        "mailmfa enable alice@example.com --confirm 189145 --json",
        "mailmfa check --service dovecot --rhost 192.0.2.7 alice@example.com",
        "mailmfa disable alice@example.com --code 402917",
        "mailmfa app-password add alice@example.com --label thunderbird --services dovecot,smtp --expires 365d",
        "mailmfa app-password list alice@example.com",
        "mailmfa app-password revoke alice@example.com thunderbird",
        "mailmfa recovery-codes alice@example.com",
        "mailmfa disable alice@example.com --code abcd-efgh-ijkl",
        "mailmfa enable alice@example.com --replace --force",
        "mailmfa notify",
    ] {
        r.text([roman(line)]);
    }
    r.control("fi", []);
}

fn see_also(r: &mut Roff) {
    r.control("SH", ["SEE ALSO"]);
    let mut text = Vec::new();
    for (i, (name, section)) in [
        ("pam_mailmfa", "8"),
        ("mailmfa.toml", "5"),
        ("mailmfa-panel", "8"),
        ("pam", "8"),
        ("pam.d", "5"),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            text.push(roman(", "));
        }
        text.push(bold(name));
        text.push(roman(format!("({section})")));
    }
    text.push(roman(
        ", and cli.md, mail-clients.md, notifications.md, configuration.md, ",
    ));
    text.push(roman("deployment.md in "));
    text.push(italic("/usr/share/doc/mailmfa/"));
    text.push(roman(" (in the source tree: docs/)."));
    r.text(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_page_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/mailmfa.1");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == render(),
            "man/mailmfa.1 is not what `mailmfa manpage` prints: run \
             `cargo run -q --bin mailmfa -- manpage > man/mailmfa.1` and commit it"
        );
    }

    #[test]
    fn every_subcommand_has_its_section_and_synopsis_line() {
        let page = render();
        for (path, _) in subcommands(&command()) {
            assert!(
                page.contains(&format!(".SS \"{path}\""))
                    || page.contains(&format!(".SS {path}\n")),
                "{path}"
            );
        }
        for needle in [
            ".TH MAILMFA 1 ",
            "mailmfa \\- Turn TOTP",
            "\\fBmailmfa enable\\fR",
            "\\fBmailmfa app\\-password add\\fR",
            ".SH \"EXIT STATUS\"",
            "check: the PAM stack refused the login",
        ] {
            assert!(page.contains(needle), "{needle}");
        }
        assert!(
            !page.contains(".SS completions"),
            "hidden commands stay hidden"
        );
        assert!(!page.contains(".SS manpage"), "hidden commands stay hidden");
    }
}
