//! The PAM boundary: the crate's only `unsafe` code.
//!
//! - [`exports`]: the `pam_sm_*` functions libpam calls, each under `catch_unwind`.
//! - [`handle`]: a safe view of the module's `pam_handle` (user, password, items, kept data,
//!   log lines).
//! - [`client`]: the application side (start a transaction, answer the conversation), used by
//!   `mailmfa check`, the tests and the benchmark.
//! - [`sys`]: the few libc calls the rest needs (effective uid, syslog for the command).
//!
//! Everything outside this folder is safe Rust (`#![deny(unsafe_code)]` in `lib.rs`).

pub mod client;
mod exports;
pub mod handle;
pub mod sys;
