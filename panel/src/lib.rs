//! The mailmfa User Panel: self-service MFA pages and a JSON API for mailbox owners.
//!
//! - [`config`]: the `[panel]` table of `mailmfa.toml`.
//! - [`server`]: routes, security headers, bounds, the accept loop, graceful shutdown.
//! - [`html`]: the HTML routes; [`pages`]: their templates (maud) and the QR code.
//! - [`api`]: the JSON API.
//! - [`signin`]: signing in (the limit, Dovecot, the code at the end); [`dovecot`]: the
//!   auth-client protocol; [`limit`]: failed sign-ins per address.
//! - [`session`]: server-side sessions and CSRF tokens; [`client`]: the client address.
//! - [`accounts`]: the only caller of `mailmfa::account` (every account rule lives there).
//! - [`events`]: the panel's own log lines; [`app`]: the shared state; [`run`]: start-up.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod api;
pub mod app;
pub mod client;
pub mod config;
mod contract_shim;
pub mod dovecot;
pub mod events;
pub mod html;
pub mod limit;
pub mod pages;
pub mod run;
pub mod server;
pub mod session;
pub mod signin;
