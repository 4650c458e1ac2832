//! `--help` texts: one for the command and one per subcommand. The man page
//! (`docs/mailmfa.1`) says the same at more length.

use super::exit::EXIT_CODES_HELP;

/// `mailmfa --help`.
pub fn main() -> String {
    format!(
        "\
mailmfa {version}: turn TOTP second-factor logins (pam_mailmfa.so) on and off for mailboxes

Usage: mailmfa [--config PATH] COMMAND [OPTIONS] [LOGIN]

Commands:
  enable LOGIN         show a new secret as a QR code, turn MFA on once a code of it is typed
  enable LOGIN --begin / --confirm CODE
                       the same in two steps, for user panels (with --json)
  disable LOGIN        turn MFA off (needs a current code, or --force)
  status LOGIN         on/off/pending, last code, throttle (never a secret)
  list                 every login with MFA on or pending
  check --service S LOGIN
                       run the pam.d stack S like Dovecot and show mailmfa's reason
  help [COMMAND]       this text, or a command's

Every command takes --config PATH (default /etc/mailmfa/mailmfa.toml), the file the module
reads with config=PATH, and --help. Logins are normalised like the module does: ASCII letters
are lower-cased.

{EXIT_CODES_HELP}
See mailmfa(1).
",
        version = env!("CARGO_PKG_VERSION")
    )
}

/// A subcommand's `--help`, `None` for an unknown name.
pub fn command(name: &str) -> Option<String> {
    let text = match name {
        "enable" => {
            "\
Usage: mailmfa enable LOGIN [--label TEXT] [--invert] [--qr-png FILE] [--qr-svg FILE]
                            [--replace [--code CODE | --force]]
       mailmfa enable LOGIN --begin [--json] [same options]
       mailmfa enable LOGIN --confirm CODE [--json]

Makes a new 160-bit secret and shows it once: a QR code in the terminal, the otpauth:// URI and
the key for typing in by hand. Then asks for the code the app shows; only a right code writes
the record and turns MFA on. That confirming code counts as used: it cannot log in afterwards.

Options:
  --begin          for panels: store a pending enrolment (it expires after 10 minutes) and
                   show the secret; MFA stays off until --confirm
  --confirm CODE   turn the pending enrolment on with a code of its secret
  --json           with --begin: print {login, uri, secret, expires_at, qr_svg, ...};
                   with --confirm: print {login, mfa, created}
  --replace        replace an active secret (a new phone); needs --code or --force
  --code CODE      with --replace: a current code of the OLD secret (asked for when missing)
  --force          with --replace: replace without a code of the old secret (admins)
  --label TEXT     a note kept in the record, such as the device's name
  --invert         draw the QR code for a terminal with a light background
  --qr-png FILE    also write the QR code as a PNG image (a new file, mode 0600)
  --qr-svg FILE    also write the QR code as an SVG image (a new file, mode 0600)
  --config PATH    the config file (default /etc/mailmfa/mailmfa.toml)

The QR code and its image files hold the secret: delete the files after scanning.
"
        }
        "disable" => {
            "\
Usage: mailmfa disable LOGIN [--code CODE | --force] [--json]

Turns MFA off: removes the record, the state and any pending enrolment. Needs a current code,
checked like a login code (a code that already logged in is refused, wrong codes count
against the throttle); it is asked for when --code is missing.

Options:
  --code CODE      a current code of the login's secret
  --force          turn MFA off without a code (admins; audited)
  --json           print {login, mfa}
  --config PATH    the config file (default /etc/mailmfa/mailmfa.toml)
"
        }
        "status" => {
            "\
Usage: mailmfa status LOGIN [--json]

Shows whether MFA is on, off or pending, since when, the record's code parameters, the last
accepted code and from which client, and whether the throttle refuses codes now. Never shows
a secret.

Options:
  --json           one JSON object: login, mfa, created, label, algorithm, digits, period,
                   last_success, last_client, throttled, recent_failures, pending
  --config PATH    the config file (default /etc/mailmfa/mailmfa.toml)
"
        }
        "list" => {
            "\
Usage: mailmfa list [--json]

One line (or JSON object, in an array) per login with MFA on or an enrolment pending, with the
same fields as `status`. Never shows a secret.

Options:
  --json           a JSON array of status objects
  --config PATH    the config file (default /etc/mailmfa/mailmfa.toml)
"
        }
        "check" => {
            "\
Usage: mailmfa check --service SERVICE [--confdir DIR] [--rhost ADDRESS] [--json] LOGIN

Runs the PAM stack of SERVICE as Dovecot does (pam_authenticate, then pam_acct_mgmt) with the
password followed by the code, read with echo off from the terminal or as one line from stdin.
Prints `result: success|failure (PAM's text)` and `reason: ` mailmfa's reason for its last
decision (ok, reused, no_code, bad_code, replayed, throttled, ...). Exits 0 on success, 7
when the stack refused the login.

Options:
  --service NAME   the pam.d service file to run
  --confdir DIR    read service files from DIR instead of /etc/pam.d
  --rhost ADDRESS  PAM_RHOST, the client's address (mail servers set it)
  --json           print {result, pam, authenticate, account, reason, messages}
"
        }
        _ => return None,
    };
    Some(format!("{text}\n{EXIT_CODES_HELP}"))
}
