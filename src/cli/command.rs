// One concept, the command line; long because every subcommand's help text lives here.
//! The command line, declared once with clap's derive: every subcommand, its arguments and
//! their help. `mailmfa --help` and each subcommand's help, the man page mailmfa(1)
//! ([`super::man`]) and the shell completions (`mailmfa completions SHELL`) are all made from
//! these types, and each subcommand's `run` takes its own struct.
//!
//! A doc comment's first paragraph is the short help (`-h`, the list of commands); the whole
//! comment is the long help (`--help`, `mailmfa help COMMAND`, the man page).
//!
//! Usage errors keep the command's own style (``mailmfa: disable: `--code` needs a value``)
//! and exit 2 ([`Exit::Usage`], also clap's code for them).

use super::exit::{Exit, Failure, EXIT_CODES_HELP};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::shells::{Bash, Fish, Zsh};
use std::ffi::OsString;
use std::path::PathBuf;

/// `mailmfa --version`: the version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MAILMFA_BUILD_REV"),
    ")"
);

/// Turn TOTP second-factor logins (pam_mailmfa.so) on and off for mailboxes
///
/// mailmfa manages the second factor that pam_mailmfa.so checks: a TOTP code (RFC 6238) that
/// mail clients send appended to the password, so that the password T9D3K!px with the code
/// 189 145 is sent as T9D3K!px189145.
///
/// Every command reads the configuration file of the module (/etc/mailmfa/mailmfa.toml, or
/// --config PATH before or after the command's name) with the module's checks, and writes the
/// per-user records the module reads from record_dir (temp file, fsync, rename; mode 0600).
/// Logins follow the module's rule: ASCII letters, digits and . _ - + @ = starting with a
/// letter or digit, letters lower-cased. It normally runs as root.
#[derive(Parser, Debug)]
#[command(
    name = "mailmfa",
    version = VERSION,
    max_term_width = 100,
    subcommand_value_name = "COMMAND"
)]
pub struct Cli {
    /// The configuration file, the one the module reads with config=PATH [default:
    /// /etc/mailmfa/mailmfa.toml]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, overrides_with = "config")]
    pub config: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, in the order `--help` lists them.
#[derive(Subcommand, Debug)]
pub enum Command {
    Enable(Enable),
    Disable(Disable),
    Status(Status),
    List(List),
    /// Per-device passwords for mail clients that store the password: add, list, revoke
    ///
    /// App passwords let mail clients that store the password (desktop clients, phones) log in
    /// without a code. Each is 20 generated letters (abcde-fghij-klmno-pqrst, 94 bits), typed
    /// in the client as the password, alone: no mailbox password and no code (dashes
    /// optional). The record keeps only a salted hash of it. MFA must be on; turning it off
    /// removes them all.
    ///
    /// PAM service names (add --services) limit the services one works for; by default it
    /// works for every service.
    ///
    /// The module accepts them in its split phase, which then ends the stack: the pam.d line
    /// must be "auth [success=done ignore=ignore auth_err=bad default=die] pam_mailmfa.so
    /// split", and the stack's account line ("account required pam_mailmfa.so account
    /// pwdfile=FILE") stops them once the mailbox is deleted or locked (mail-clients.md).
    ///
    /// Exit 4 when MFA is not on, when add's NAME is taken, or when revoke's NAME does not
    /// exist.
    #[command(subcommand)]
    AppPassword(AppPassword),
    RecoveryCodes(RecoveryCodes),
    Check(Check),
    Doctor(Doctor),
    Notify(Notify),
    /// The SQL records (records = "sql"): tables, keys, moving records in and out
    ///
    /// With records = "sql" in mailmfa.toml the records live in one table of PostgreSQL or
    /// MariaDB/MySQL (sql_url), each sealed with the last key of sql_key_file. These commands
    /// create and upgrade the tables, make and rotate keys, and move every record between
    /// record_dir's files and the database, counted and read back (sql.md).
    #[command(subcommand)]
    Db(Db),
    #[command(disable_help_flag = true)]
    Serve(Serve),
    #[command(hide = true)]
    Completions(Completions),
    #[command(hide = true)]
    Manpage(Manpage),
}

/// `--config PATH` after the command's name.
#[derive(Args, Debug)]
pub struct Config {
    /// The configuration file, the one the module reads with config=PATH [default:
    /// /etc/mailmfa/mailmfa.toml]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub config: Option<String>,
}

/// Show a new secret as a QR code, and turn MFA on once a code of it is typed
///
/// Makes a new 160-bit secret from the operating system's random source and shows it once: a
/// QR code in the terminal, the otpauth://totp/ISSUER:LOGIN?secret=... URI and the key in
/// groups of four, for typing in by hand. Then asks for the code the authenticator app shows.
/// Only a right code (within `window` steps) writes the record and turns MFA on; three wrong
/// codes, or none, leave everything as it was. The confirming code counts as used (client
/// mailmfa-enable): it cannot log in afterwards. The issuer, digits and period come from
/// mailmfa.toml.
///
/// For user panels the same goes in two steps. --begin stores a pending enrolment in
/// record_dir/pending/LOGIN.toml (mode 0600; the module never reads it) that expires after 10
/// minutes, and shows the secret; a second --begin replaces it. --confirm CODE turns it on
/// when CODE is a current code of its secret. An expired enrolment is removed (exit 5);
/// max_failures wrong codes cancel it (exit 5), and before that each wrong code exits 3 and
/// says how many tries are left.
///
/// --replace replaces an active secret (a new phone), with a current code of the old secret
/// or --force. The old secret keeps working until the new one is confirmed; app passwords and
/// recovery codes carry over.
///
/// The QR code and its image files hold the secret: delete the files after scanning.
#[derive(Args, Debug)]
pub struct Enable {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// For panels: store a pending enrolment (it expires after 10 minutes) and show the
    /// secret; MFA stays off until --confirm
    #[arg(long)]
    pub begin: bool,
    /// Turn the pending enrolment on with a current code of its secret
    #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
    pub confirm: Option<String>,
    /// With --begin: print {login, uri, secret, issuer, algorithm, digits, period,
    /// expires_at, replace, replaced_pending, qr_svg}; with --confirm: print {login, mfa,
    /// created}
    #[arg(long)]
    pub json: bool,
    /// Replace an active secret (a new phone); needs --code or --force
    #[arg(long)]
    pub replace: bool,
    /// With --replace: a current code of the OLD secret (asked for when missing)
    #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
    pub code: Option<String>,
    /// With --replace: replace without a code of the old secret (admins; audited with
    /// force=yes)
    #[arg(long)]
    pub force: bool,
    /// A note kept in the record, such as the device's name
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub label: Option<String>,
    /// Draw the QR code for a terminal with a light background (by default the terminal's
    /// foreground colour draws the light modules, as on a dark background)
    #[arg(long)]
    pub invert: bool,
    /// Also write the QR code as a PNG image (black on white; a new file, mode 0600)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, allow_hyphen_values = true)]
    pub qr_png: Option<String>,
    /// Also write the QR code as an SVG image (black on white; a new file, mode 0600)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, allow_hyphen_values = true)]
    pub qr_svg: Option<String>,
    #[command(flatten)]
    pub config: Config,
}

/// Turn MFA off (needs a current code or a recovery code, or --force)
///
/// Turns MFA off: removes the record (with its app passwords and recovery codes), the state
/// and any pending enrolment. Needs a current code, checked like a login code from the client
/// mailmfa-disable: a code whose step was already accepted is refused, and wrong codes count
/// against the throttle (max_failures, fail_interval). An unused recovery code
/// (abcd-efgh-ijkl) is taken in place of the code, under the same throttle, and is used up.
/// The code is asked for when --code is missing.
#[derive(Args, Debug)]
pub struct Disable {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// A current code of the login's secret, or an unused recovery code (abcd-efgh-ijkl)
    #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
    pub code: Option<String>,
    /// Turn MFA off without a code (admins; audited with force=yes; also for a damaged
    /// record)
    #[arg(long)]
    pub force: bool,
    /// Print {login, mfa}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// On, off or pending; the last code and the throttle (never a secret)
///
/// Shows whether MFA is on, off or pending, since when, the label, the code parameters, the
/// number of app passwords and of unused recovery codes, the last accepted code and its
/// client, and whether the throttle refuses codes now. Never shows a secret. With state =
/// "redis", also where the state lives and how long its key still lives. Times are ISO 8601
/// UTC in text and Unix seconds in JSON.
#[derive(Args, Debug)]
pub struct Status {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// One JSON object: login, mfa (on, off, pending), created, label, algorithm, digits,
    /// period, last_success, last_client, throttled, recent_failures, app_passwords (how
    /// many), recovery_codes_left (unused), pending ({expires_at, expired, replace} or null)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// Every login with MFA on or an enrolment pending
///
/// One line per login with a record or a pending enrolment, with the fields of status. A
/// record that cannot be read is listed as error and makes the command exit 1. Never shows a
/// secret.
#[derive(Args, Debug)]
pub struct List {
    /// A JSON array of status objects
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// `app-password add|list|revoke`.
#[derive(Subcommand, Debug)]
pub enum AppPassword {
    Add(AppPasswordAdd),
    List(AppPasswordList),
    Revoke(AppPasswordRevoke),
}

/// Make an app password for one mail client and print it once
///
/// Makes an app password: 20 letters from the operating system's random source, in groups of
/// five, printed once. The record keeps only a salted SHA-256 hash of it (a high-entropy
/// generated secret needs no slow hash, and a slow one would cost every reconnect).
#[derive(Args, Debug)]
pub struct AppPasswordAdd {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// Its name, unique per login: 1-64 letters, digits, `.`, `_`, `-` (say which device:
    /// thunderbird-laptop, alice-phone)
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub label: String,
    /// The PAM services it works for, by PAM service name: the pam.d file name the server
    /// uses. Dovecot's is `dovecot` unless its passdb has `args = %s` (then `imap`, `pop3`),
    /// saslauthd's is `smtp`. Default: every service
    #[arg(long, value_name = "S,S", allow_hyphen_values = true)]
    pub services: Option<String>,
    /// It stops working after DURATION: 3600, 12h, 90d (default: never)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub expires: Option<String>,
    /// Print {login, name, password, services, created, expires}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// A login's app passwords and their last use (never the password)
///
/// One line per app password: name, services (or all), created, expires (or never; marked
/// (expired) when past), and its last use and from which client address, as the module
/// recorded it in the state. Never the password or its hash.
#[derive(Args, Debug)]
pub struct AppPasswordList {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// Print {login, app_passwords: [{name, services ([] = all), created, expires, expired,
    /// last_used, last_client}]}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// End one app password at once
#[derive(Args, Debug)]
pub struct AppPasswordRevoke {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// The app password's name (its --label)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Print {login, name, revoked}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// 10 one-time codes for a lost phone, shown once (replaces the old set)
///
/// Makes 10 one-time recovery codes (abcd-efgh-ijkl, 56 bits each) for an owner who loses the
/// phone, prints them once and keeps only their salted hashes in the record; a new set
/// replaces the old one, whose codes stop working. MFA must be on.
///
/// A recovery code is typed after the password in place of the six-digit code
/// (T9D3K!pxabcd-efgh-ijkl), works once, and is checked after the password under the same
/// throttle as codes. "mailmfa disable LOGIN --code CODE" also takes one; "mailmfa status"
/// shows how many are left.
#[derive(Args, Debug)]
pub struct RecoveryCodes {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// Print {login, codes, replaced} (replaced: how many old codes the new set replaced)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// Run the pam.d stack of a service like Dovecot does and show mailmfa's reason
///
/// Runs the whole PAM stack of SERVICE the way Dovecot does: pam_authenticate, then
/// pam_acct_mgmt, with PAM_RHOST from --rhost and a conversation that answers hidden prompts
/// with the password and visible ones with the login. The password followed by the code is
/// read with echo off from the terminal, or as one line from standard input when it is not a
/// terminal; it is never printed.
///
/// Prints "result: success" or "result: failure" with PAM's text, and "reason:" with the
/// module's reason for its last decision (ok, reused, no_code, bad_code, replayed, throttled,
/// no_mfa, ...). Exits 0 on success, 7 when the stack refused the login.
#[derive(Args, Debug)]
pub struct Check {
    /// The login, as the mail server passes it to PAM
    #[arg(value_name = "LOGIN")]
    pub login: String,
    /// The pam.d service file to run
    #[arg(long, value_name = "SERVICE", allow_hyphen_values = true)]
    pub service: String,
    /// Read the service files from DIR instead of /etc/pam.d
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, allow_hyphen_values = true)]
    pub confdir: Option<String>,
    /// PAM_RHOST, the client's address (mail servers set it)
    #[arg(long, value_name = "ADDRESS", allow_hyphen_values = true)]
    pub rhost: Option<String>,
    /// Print {result, pam, authenticate, account, reason, messages}
    #[arg(long)]
    pub json: bool,
    /// Accepted as everywhere, and not read: the stack reads what its pam.d lines name
    #[arg(long, value_name = "PATH", hide = true)]
    pub config: Option<String>,
}

/// Check the set-up (config, directories, pam.d stacks, caches) and say what to fix
///
/// Checks the whole set-up and prints one line per finding (ok, warning, error) with the fix:
///
/// - the config file and the record and state directories, by the module's rules; with
///   record_owner set, that the record directory is owned by that user (or root) with mode
///   0700;
///
/// - every service file in the pam.d directory that names pam_mailmfa.so: split before a
///   requisite password module before verify required, the split control that lets app
///   passwords end the stack, and the account line Dovecot needs;
///
/// - Dovecot's auth cache (doveconf -n): with auth_cache_size and a cache_key on the PAM
///   passdb it answers a repeated password+code without asking PAM;
///
/// - saslauthd's options: -c (its credential cache, the same hole) and -r (full login names);
///
/// - with state = "redis", the shared state server (the connection, the ACL user's rights,
///   eviction, persistence); with notifications on, the notifier's spool and sendmail.
///
/// Exits 0 when nothing is an error (warnings are printed), 1 otherwise.
#[derive(Args, Debug)]
pub struct Doctor {
    /// The service files to check
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, default_value = "/etc/pam.d", allow_hyphen_values = true)]
    pub pam_dir: String,
    /// The dovecot.conf to read [default: Dovecot's own, through doveconf -n]
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, allow_hyphen_values = true)]
    pub dovecot_config: Option<String>,
    /// saslauthd's options
    #[arg(
        long,
        value_name = "FILE",
        value_hint = ValueHint::FilePath,
        default_value = "/etc/default/saslauthd",
        allow_hyphen_values = true
    )]
    pub saslauthd_defaults: String,
    /// Print {findings: [{level, what, fix}], errors, warnings}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// Mail the owners what changed and who has their password (one pass over the spool)
///
/// One pass of the notifier, then exit. "[notify] enabled = true" in the config turns it on;
/// otherwise it says so and exits 0 without touching anything.
///
/// 1. App passwords whose expiry has come are removed from the records (each is an event for
///    its owner; at most once an hour, since it reads every record).
///
/// 2. The events that the module, this command and the panel put into the spool's new/ are
///    claimed, and each becomes one mail in out/, kept until it is sent. "Password known, code
///    wrong" alerts of one login are held back and merged: at most one mail per alert_every.
///
/// 3. Every mail that is due goes to its owner through sendmail ("-i -f SENDER -- LOGIN", the
///    mail on standard input).
///
/// 4. A mail that sendmail did not take stays and is tried again by later passes, after 1
///    minute, then 2, 4, ... up to every hour, with a log line each time: nothing is dropped.
///    Delivery is at least once: a pass killed after sendmail took a mail but before its file
///    was removed sends that mail again.
///
/// Run it from mailmfa-notify.path (at once, when an event arrives) and mailmfa-notify.timer
/// (every minute, for retries and held alerts): "systemctl enable --now mailmfa-notify.path
/// mailmfa-notify.timer". What is sent when, the texts and their translations:
/// notifications.md.
///
/// Exits 0 when the pass is done (each mail sent, or kept for a retry and logged), 1 when the
/// spool cannot be used (the message names the path), 6 when it is unsafe.
#[derive(Args, Debug)]
pub struct Notify {
    /// Also try the mails waiting for a retry now (after fixing the MTA)
    #[arg(long)]
    pub retry_now: bool,
    /// Print {events, sent, deferred, waiting, held, dropped, expired}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// `mailmfa db ...`.
#[derive(Subcommand, Debug)]
pub enum Db {
    Init(DbInit),
    Migrate(DbMigrate),
    Status(DbStatus),
    Keygen(DbKeygen),
    Rekey(DbRekey),
    Import(DbMove),
    Export(DbMove),
}

impl Db {
    /// The `--config` given after the command's name; `None` for keygen, which reads none.
    pub fn config(&self) -> Option<&Config> {
        match self {
            Db::Init(a) => Some(&a.config),
            Db::Migrate(a) => Some(&a.config),
            Db::Status(a) => Some(&a.config),
            Db::Rekey(a) => Some(&a.config),
            Db::Import(a) | Db::Export(a) => Some(&a.config),
            Db::Keygen(_) => None,
        }
    }
}

/// Create the tables (mailmfa_schema, mailmfa_record) in an empty database
///
/// Runs the shipped migrations (sql/<dialect>/*.sql) against sql_url as sql_url's user, which
/// needs the right to create tables. Exits 4 when the tables are already there.
#[derive(Args, Debug)]
pub struct DbInit {
    #[command(flatten)]
    pub config: Config,
}

/// Bring the tables to this build's schema version
///
/// Applies the migrations after the database's version. The module and the panel refuse a
/// database at another version (log reason records_schema) until it is done. Exits 4 when
/// there are no tables yet (run db init).
#[derive(Args, Debug)]
pub struct DbMigrate {
    #[command(flatten)]
    pub config: Config,
}

/// Show the database, its schema version, the rows per key and the key file's keys
#[derive(Args, Debug)]
pub struct DbStatus {
    /// Print {url, schema, want, rows, keys_used: {ID: rows}, key_file: [IDs]}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// Write a new key file, or add a key to one (for a rotation)
///
/// Without --add, writes FILE (mode 0600, refused if it exists) with one new 256-bit key,
/// id 1. With --add, appends a new key with the next id to FILE: it seals new records from
/// then on; the old keys still open theirs until db rekey has re-sealed them.
#[derive(Args, Debug)]
pub struct DbKeygen {
    /// The key file (sql_key_file)
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Append a key to an existing file instead
    #[arg(long)]
    pub add: bool,
}

/// Seal every record again with the key file's last key
///
/// Each row sealed with an older key is opened, sealed with the last key of sql_key_file and
/// written back if nobody changed it meanwhile. Afterwards no row needs the old keys (db
/// status shows it) and their lines can be removed from the key file on every server.
#[derive(Args, Debug)]
pub struct DbRekey {
    #[command(flatten)]
    pub config: Config,
}

/// Copy every record between record_dir's files and the database
///
/// import copies the record files of record_dir (or --dir) into the database; export copies
/// the database's records into record_dir (or --dir) as files. Each record is read back from
/// the target and compared; the source is left as it was. A record the target holds
/// differently is left alone and named (exit 4) unless --replace.
#[derive(Args, Debug)]
pub struct DbMove {
    /// The directory of record files [default: record_dir]
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
    /// Replace records the target holds differently
    #[arg(long)]
    pub replace: bool,
    /// Print {read, written, same, conflicts: [LOGIN]}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: Config,
}

/// Start the web panel (mailmfa-panel) for owners and admins
///
/// Starts the web panel, mailmfa-panel, in place of this command: the one beside this
/// mailmfa, else the first on PATH. --config PATH, given before serve, is passed on first;
/// ARGS follow unchanged (see mailmfa-panel --help). Exits 1 when no mailmfa-panel is found.
/// The panel turns MFA on and off, and manages app passwords and recovery codes, with the
/// same rules and audit lines as these commands; its settings are the [panel] table of the
/// config file.
#[derive(Args, Debug)]
pub struct Serve {
    /// The panel's arguments, passed on unchanged (-h or --help first: this help)
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// Print the completion script of a shell (the package installs all three)
#[derive(Args, Debug)]
pub struct Completions {
    /// The shell
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// The shells `completions` writes for: the ones whose Debian packages load a package's own.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print the man page mailmfa(1) in roff: the source of man/mailmfa.1
#[derive(Args, Debug)]
pub struct Manpage {}

/// The whole command line as clap's builder sees it: the derive, and what every subcommand
/// shares (the exit codes under its help).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for_each_command(&mut cmd, &|c| {
        let c = c.after_help(EXIT_CODES_HELP);
        if !c.has_subcommands() {
            return c;
        }
        // A missing command or action is a usage error in the command's words (`parse`), not
        // a help page on stderr. `help` is the command's, not each group's.
        let nested = c.get_name() != "mailmfa";
        c.arg_required_else_help(false)
            .subcommand_required(true)
            .disable_help_subcommand(nested)
    });
    cmd
}

/// Prints the completion script of `shell` for the commands `--help` lists (not the hidden
/// `completions` and `manpage`).
pub fn print_completions(shell: Shell) {
    let full = command();
    let mut shown = clap::Command::new("mailmfa").version(VERSION);
    for arg in full.get_arguments() {
        shown = shown.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        shown = shown.subcommand(sub.clone());
    }
    let out = &mut std::io::stdout();
    match shell {
        Shell::Bash => clap_complete::generate(Bash, &mut shown, "mailmfa", out),
        Shell::Zsh => clap_complete::generate(Zsh, &mut shown, "mailmfa", out),
        Shell::Fish => clap_complete::generate(Fish, &mut shown, "mailmfa", out),
    }
}

/// Applies `f` to `cmd` and to every subcommand below it.
fn for_each_command(cmd: &mut clap::Command, f: &dyn Fn(clap::Command) -> clap::Command) {
    *cmd = f(std::mem::take(cmd));
    for sub in cmd.get_subcommands_mut() {
        for_each_command(sub, f);
    }
}

/// Parses the command line (the program's name first). `Ok(None)`: it asked for the help or
/// the version, which are printed.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Cli>, Failure> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut cmd = command();
    let matches = match cmd.try_get_matches_from_mut(&args) {
        Ok(matches) => matches,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // As `print!` did, but a closed stdout is no reason to panic.
            let _ = e.print();
            return Ok(None);
        }
        Err(e) => return Err(usage_failure(&e, &mut cmd, &args)),
    };
    Cli::from_arg_matches(&matches)
        .map(Some)
        .map_err(|e| usage_failure(&e, &mut cmd, &args))
}

/// Prints the long help of a subcommand (`serve --help`, which clap leaves to the panel).
pub fn print_help(name: &str) {
    let mut cmd = command();
    cmd.build();
    if let Some(sub) = cmd.find_subcommand_mut(name) {
        let _ = sub.print_long_help();
    }
}

/// A clap error in the command's words: `SUBCOMMAND: WHAT (see mailmfa SUBCOMMAND --help)`,
/// exit 2.
fn usage_failure(e: &clap::Error, cmd: &mut clap::Command, args: &[OsString]) -> Failure {
    let path = command_path(cmd, args);
    let string = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    // `--code <CODE>` -> `--code`: the option as it is typed.
    let option = |kind| {
        string(kind)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let did_you_mean = |kind| match strings(kind).first() {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    };
    let what = match e.kind() {
        ErrorKind::InvalidValue if string(ContextKind::InvalidValue).is_empty() => {
            format!("`{}` needs a value", option(ContextKind::InvalidArg))
        }
        ErrorKind::InvalidValue => format!(
            "`{}` is not a value of {}: {}",
            string(ContextKind::InvalidValue),
            option(ContextKind::InvalidArg).replace(['<', '>'], ""),
            or_list(&strings(ContextKind::ValidValue)),
        ),
        ErrorKind::UnknownArgument => {
            let arg = string(ContextKind::InvalidArg);
            let what = if arg.starts_with('-') {
                "unknown option"
            } else {
                "one argument too many:"
            };
            format!("{what} `{arg}`{}", did_you_mean(ContextKind::SuggestedArg))
        }
        ErrorKind::ArgumentConflict => {
            let arg = option(ContextKind::InvalidArg);
            match option(ContextKind::PriorArg) {
                prior if !prior.is_empty() && prior != arg => {
                    format!("give `{arg}` or `{prior}`, not both")
                }
                _ => format!("`{arg}` is given twice"),
            }
        }
        ErrorKind::TooManyValues => {
            format!("`{}` takes no value", option(ContextKind::InvalidArg))
        }
        ErrorKind::MissingRequiredArgument => {
            let missing: Vec<String> = strings(ContextKind::InvalidArg)
                .iter()
                .map(|a| a.replace(['<', '>'], ""))
                .collect();
            let verb = if missing.len() == 1 { "is" } else { "are" };
            format!("{} {verb} required", and_list(&missing))
        }
        ErrorKind::InvalidSubcommand => format!(
            "no command `{}`{}",
            string(ContextKind::InvalidSubcommand),
            did_you_mean(ContextKind::SuggestedSubcommand)
        ),
        ErrorKind::MissingSubcommand if path.is_empty() => {
            // As before: the list of commands, then the complaint.
            let _ = cmd.print_long_help();
            return Failure::usage("name a command");
        }
        ErrorKind::MissingSubcommand => format!(
            "name an action: {}",
            or_list(&strings(ContextKind::ValidSubcommand))
        ),
        ErrorKind::InvalidUtf8 => "an argument is not valid UTF-8".to_string(),
        _ => {
            // Clap's own words, without its `error: ` and the usage lines under them.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    let (prefix, see) = if path.is_empty() {
        (String::new(), "mailmfa --help".to_string())
    } else {
        (format!("{path}: "), format!("mailmfa {path} --help"))
    };
    Failure::new(Exit::Usage, format!("{prefix}{what} (see {see})"))
}

/// The subcommand that `args` name (`app-password add`), as far as they name one: empty for
/// the command itself.
fn command_path(cmd: &clap::Command, args: &[OsString]) -> String {
    let mut path = Vec::new();
    let mut current = cmd;
    let mut args = args.iter().skip(1).map(|a| a.to_str().unwrap_or("-"));
    while let Some(arg) = args.next() {
        if let Some(long) = arg.strip_prefix("--").filter(|l| !l.is_empty()) {
            let takes_value =
                |a: &clap::Arg| a.get_long() == Some(long) && a.get_action().takes_values();
            if current.get_arguments().any(takes_value) {
                args.next();
            }
            continue;
        }
        if arg.starts_with('-') && arg != "-" && arg != "--" {
            continue;
        }
        match current
            .find_subcommand(arg)
            .filter(|sub| sub.get_name() != "help")
        {
            Some(sub) => {
                path.push(sub.get_name());
                current = sub;
            }
            None => break,
        }
    }
    path.join(" ")
}

/// `a, b or c`.
fn or_list(items: &[String]) -> String {
    joined(items, "or")
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    joined(items, "and")
}

fn joined(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {word} {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Option<Cli>, Failure> {
        parse(
            std::iter::once("mailmfa")
                .chain(line.split_whitespace())
                .map(OsString::from),
        )
    }

    fn cli(line: &str) -> Cli {
        parse_line(line).expect(line).expect(line)
    }

    fn message(line: &str) -> String {
        let failure = parse_line(line).err().unwrap_or_else(|| panic!("{line}"));
        assert_eq!(failure.exit, Exit::Usage, "{line}");
        failure.message
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn options_positionals_and_config_on_either_side() {
        let parsed = cli("--config /a.toml enable alice --code=123456 --json --replace");
        assert_eq!(parsed.config.as_deref(), Some("/a.toml"));
        let Command::Enable(a) = parsed.command else {
            panic!("enable")
        };
        assert_eq!(a.login, "alice");
        assert_eq!(a.code.as_deref(), Some("123456"));
        assert!(a.json && a.replace && !a.force && a.config.config.is_none());

        let Command::Disable(a) = cli("disable --config /b.toml --code -1 -- -alice").command
        else {
            panic!("disable")
        };
        assert_eq!(a.login, "-alice");
        assert_eq!(a.code.as_deref(), Some("-1"));
        assert_eq!(a.config.config.as_deref(), Some("/b.toml"));

        // Before the command, the last one counts (as it always did).
        assert_eq!(
            cli("--config /a --config /b list").config.as_deref(),
            Some("/b")
        );
    }

    #[test]
    fn nested_actions_and_arguments_passed_on() {
        let Command::AppPassword(AppPassword::Add(a)) =
            cli("app-password add alice --label tb --services imap,smtp").command
        else {
            panic!("app-password add")
        };
        assert_eq!(a.label, "tb");
        assert_eq!(a.services.as_deref(), Some("imap,smtp"));

        let Command::Serve(s) = cli("serve --listen 127.0.0.1:8080 --config x --help").command
        else {
            panic!("serve")
        };
        assert_eq!(
            s.args,
            ["--listen", "127.0.0.1:8080", "--config", "x", "--help"]
        );
    }

    #[test]
    fn mistakes_are_usage_errors_in_the_commands_words() {
        for (line, said) in [
            ("disable alice --code", "disable: `--code` needs a value"),
            ("enable alice --bogus", "enable: unknown option `--bogus`"),
            ("enable alice -x", "enable: unknown option `-x`"),
            ("enable alice --json=1", "enable: `--json` takes no value"),
            (
                "enable alice --json --json",
                "enable: `--json` is given twice",
            ),
            (
                "enable alice --code 1 --code 2",
                "enable: `--code` is given twice",
            ),
            ("enable a b", "enable: one argument too many: `b`"),
            ("list x", "list: one argument too many: `x`"),
            ("status", "status: LOGIN is required"),
            (
                "app-password add alice",
                "app-password add: --label NAME is required",
            ),
            (
                "app-password",
                "app-password: name an action: add, list or revoke",
            ),
            ("app-password remove a", "app-password: no command `remove`"),
            ("bogus", "no command `bogus`"),
            (
                "completions tcsh",
                "completions: `tcsh` is not a value of SHELL: bash, zsh or fish",
            ),
        ] {
            let message = message(line);
            assert!(message.starts_with(said), "{line}: {message}");
        }
        assert_eq!(message(""), "name a command");
        assert!(
            message("list --config").ends_with("(see mailmfa list --help)"),
            "{}",
            message("list --config")
        );
    }
}
