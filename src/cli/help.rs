//! `--help` texts: one for the command and one per subcommand. The man page
//! (`man/mailmfa.1`) says the same at more length.

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
  disable LOGIN        turn MFA off (needs a current code or a recovery code, or --force)
  status LOGIN         on/off/pending, last code, throttle (never a secret)
  list                 every login with MFA on or pending
  app-password add LOGIN --label NAME [--services S,S] [--expires 90d]
                       a generated password for one mail client, shown once
  app-password list LOGIN / revoke LOGIN NAME
                       its app passwords and their last use; end one at once
  recovery-codes LOGIN 10 one-time codes for a lost phone, shown once (replaces the old set)
  check --service S LOGIN
                       run the pam.d stack S like Dovecot and show mailmfa's reason
  doctor               check the config, the directories, every pam.d stack with mailmfa,
                       and the caches in front of PAM (Dovecot, saslauthd); say what to fix
  notify               mail the owners what changed and who has their password (one pass
                       over the spool; run by mailmfa-notify.path and .timer)
  serve [ARGS]         start the web panel (mailmfa-panel) for owners and admins
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

Turns MFA off: removes the record (with its app passwords and recovery codes), the state and
any pending enrolment. Needs a current code, checked like a login code (a code that already
logged in is refused, wrong codes count against the throttle), or an unused recovery code,
which this uses up; it is asked for when --code is missing.

Options:
  --code CODE      a current code of the login's secret, or a recovery code (abcd-efgh-ijkl)
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
                   last_success, last_client, throttled, recent_failures, app_passwords (how
                   many), recovery_codes_left (unused), pending
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
        "app-password" | "app-password add" | "app-password list" | "app-password revoke" => {
            "\
Usage: mailmfa app-password add LOGIN --label NAME [--services S,S] [--expires DURATION] [--json]
       mailmfa app-password list LOGIN [--json]
       mailmfa app-password revoke LOGIN NAME [--json]

App passwords let mail clients that store the password (desktop clients, phones) log in
without a code. Each is 20 generated letters (abcde-fghij-klmno-pqrst, 94 bits), typed in the
client as the password, alone: no mailbox password and no code. MFA must be on. The pam.d
stack must end it in split: `auth [success=done ignore=ignore default=die] pam_mailmfa.so
split` (see docs/mail-clients.md). Turning MFA off removes them all.

add      makes one and prints it ONCE; the record keeps only a salted hash of it
list     name, services, created, expires, last use and from which address (never the
         password)
revoke   ends one at once

Options:
  --label NAME         add: its name, unique per login: 1-64 letters, digits, `.`, `_`, `-`
                       (say which device: thunderbird-laptop, alice-phone)
  --services S,S       add: the PAM services it works for, by PAM service name, which is the
                       pam.d file name the server uses: Dovecot's is `dovecot` unless its passdb
                       has `args = %s` (then `imap`, `pop3`), saslauthd's is `smtp`. Default:
                       every service
  --expires DURATION   add: it stops working after DURATION: 3600, 12h, 90d (default: never)
  --json               add: print {login, name, password, services, created, expires, ...};
                       list: print {login, app_passwords: [{name, services ([] = all), created,
                       expires, expired, last_used, last_client}]}; revoke: {login, name, revoked}
  --config PATH        the config file (default /etc/mailmfa/mailmfa.toml)

Exit 4 when MFA is not on, when add's NAME is taken, or when revoke's NAME does not exist.
"
        }
        "recovery-codes" => {
            "\
Usage: mailmfa recovery-codes LOGIN [--json]

Makes 10 one-time recovery codes (abcd-efgh-ijkl) for an owner who loses the phone, prints
them ONCE and keeps only their salted hashes in the record; a new set replaces the old one
(the old codes stop working). MFA must be on.

A recovery code is typed after the password in place of the six-digit code
(T9D3K!pxabcd-efgh-ijkl), works once, and is checked after the password under the same
throttle as codes. `mailmfa disable LOGIN --code CODE` also takes one. `mailmfa status` shows
how many are left.

Options:
  --json           print {login, codes, replaced} (replaced: how many old codes it replaced)
  --config PATH    the config file (default /etc/mailmfa/mailmfa.toml)
"
        }
        "notify" => {
            "\
Usage: mailmfa notify [--retry-now] [--json]

One pass of the notifier, then exit (`[notify] enabled = true` in the config turns it on):
  1. app passwords whose expiry has come are removed (each is an event for its owner; at
     most once an hour, since it reads every record);
  2. the events the module, this command and the panel put into spool_dir are claimed;
  3. one mail per event goes to the owner through sendmail (`-i -f SENDER -- LOGIN`);
     \"password known, code wrong\" alerts of one login are merged, at most one mail per
     alert_every;
  4. a mail sendmail did not take is retried by later passes (1 min, doubling up to 1 h);
     nothing is dropped. At least once: a pass killed after sendmail took a mail but before
     it removed its file sends that mail again.

Run it from mailmfa-notify.path (at once when an event arrives) and mailmfa-notify.timer
(every minute, for retries and held alerts); see docs/notifications.md.

Options:
  --retry-now      also try the mails waiting for a retry now (after fixing the MTA)
  --json           print {events, sent, deferred, waiting, held, dropped, expired}
  --config PATH    the config file (default /etc/mailmfa/mailmfa.toml)

Exit 0 when the pass is done (each mail sent, or kept for a retry and logged); 1 when the
spool cannot be used (the message names the path); 6 when it is unsafe.
"
        }
        "doctor" => {
            "\
Usage: mailmfa doctor [--pam-dir DIR] [--dovecot-config FILE] [--saslauthd-defaults FILE] [--json]

Checks the whole set-up and says what to fix, one line per finding (ok, warning, error):
  - the config file and the record and state directories, with the module's rules;
  - every service file in the pam.d directory that names pam_mailmfa.so: split, then the
    password module (requisite), then verify (required); the split control that lets app
    passwords end the stack; the account line Dovecot needs;
  - Dovecot's auth cache (`doveconf -n`): with auth_cache_size and cache_key on the PAM
    passdb it answers a repeated password+code without asking PAM;
  - saslauthd's options: -c (its credential cache, the same hole) and -r (full login names).
Exits 0 when nothing is an error (warnings are printed), 1 otherwise.

Options:
  --pam-dir DIR              service files to check (default /etc/pam.d)
  --dovecot-config FILE      the dovecot.conf to read (default: Dovecot's own)
  --saslauthd-defaults FILE  saslauthd's options (default /etc/default/saslauthd)
  --json                     print {findings: [{level, what, fix}], errors, warnings}
"
        }
        "serve" => {
            "\
Usage: mailmfa [--config PATH] serve [ARGS]

Starts the web panel, mailmfa-panel, in place of this command: the one found beside this
mailmfa, else on PATH. `--config PATH`, when given, is passed on first; ARGS follow unchanged
(see mailmfa-panel --help). The panel turns MFA on and off, and manages app passwords and
recovery codes, with the same rules as these commands; its settings are the [panel] table of
the config file.
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
