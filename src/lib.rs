//! mailmfa: a TOTP second factor for mail servers.
//!
//! The map of the crate, in the order one login goes through it:
//!
//! - [`pam`] — the PAM boundary, the only `unsafe` code: `pam_sm_*` exports, a safe handle,
//!   and the application side used by `mailmfa check`, tests and the benchmark.
//! - [`module`] — one login through the module: inputs, decision, state update, answer.
//! - [`config`] — `mailmfa.toml` and the pam.d arguments, one parser for both.
//! - [`login`] — login-name normalisation and the file-name rule.
//! - [`split`] — the split rule: `password + code`.
//! - [`auth`] — the `split` and `verify` decisions as pure functions.
//! - [`otp`] — TOTP codes and which step matched.
//! - [`record`] — the per-user record format (secret), written by the command.
//! - [`state`] — the per-user state format (last step, failures), written by the module.
//! - [`store`] — where records and state live (files now; cluster backends later).
//! - [`mailbox`] — the `account` phase's rule: is an app password's mailbox still alive?
//! - [`account`] — the account layer: turning MFA on and off, app passwords, recovery codes,
//!   status; the rules the `mailmfa` command and the web panel share, each change audited.
//! - [`notify`] — mails to the owners: events from the account layer and the module, the
//!   spool they wait in, and the notifier that sends them.
//! - [`users`] — user names and uids from /etc/passwd, without NSS.
//! - [`log`] — log line format and the list of reasons.
//! - [`calendar`] — Unix days to a calendar date, for the faces' time formats.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod auth;
pub mod calendar;
pub mod config;
pub mod credential;
pub mod log;
pub mod login;
pub mod mailbox;
pub mod module;
pub mod notify;
pub mod otp;
#[allow(unsafe_code)]
pub mod pam;
pub mod record;
pub mod split;
pub mod state;
pub mod store;
pub mod users;
