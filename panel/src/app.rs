//! The panel's shared state: its settings, the sessions, the sign-in limit, the account layer
//! and the admin token; plus the request's client, worked out once per request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use zeroize::Zeroizing;

use crate::accounts::{blocking, Accounts, Who};
use crate::client::{self, Client, Peer};
use crate::config::PanelConfig;
use crate::limit::SignInLimit;
use crate::session::Sessions;

/// Everything a handler needs.
pub struct App {
    /// The `[panel]` table.
    pub config: PanelConfig,
    /// Server-side sessions.
    pub sessions: Sessions,
    /// Failed sign-ins per address.
    pub limit: SignInLimit,
    /// The account layer with the panel's settings.
    pub accounts: Arc<Accounts>,
    /// The admin token of the API, if one is configured.
    pub admin_token: Option<Zeroizing<String>>,
}

/// The shared state as handlers get it.
pub type Shared = Arc<App>;

impl App {
    /// A new state.
    pub fn new(
        config: PanelConfig,
        accounts: Arc<Accounts>,
        admin_token: Option<Zeroizing<String>>,
    ) -> Shared {
        Arc::new(App {
            sessions: Sessions::new(config.idle_timeout, config.session_lifetime),
            limit: SignInLimit::new(config.sign_in_failures, config.sign_in_interval),
            config,
            accounts,
            admin_token,
        })
    }

    /// The client of a request (its peer, or the forwarded address behind a trusted proxy).
    pub fn client(&self, peer: Option<&Peer>, headers: &HeaderMap) -> Client {
        let peer = peer.map(|p| p.0.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        client::client(peer, headers, &self.config.trusted_proxies)
    }

    /// Runs `f` with the account layer and mailbox `who` on a blocking thread.
    pub async fn run<T: Send + 'static>(
        &self,
        who: &Who,
        f: impl FnOnce(&Accounts, &Who) -> T + Send + 'static,
    ) -> T {
        let accounts = self.accounts.clone();
        let who = who.clone();
        blocking(move || f(&accounts, &who)).await
    }
}

/// The client of a request, for an extractor (the rejection: the peer is missing).
pub async fn client_of(parts: &mut Parts, app: &Shared) -> Result<Client, Response> {
    let Extension(peer) = Extension::<Peer>::from_request_parts(parts, app)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(app.client(Some(&peer), &parts.headers))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
