//! The HTTP server: routes, the guard around every request (body bound, time bound, the
//! security headers), and the accept loop that serves each connection with hyper directly so
//! that slow clients are bounded (`header_read_timeout`, a cap on connections) and SIGTERM
//! stops it gracefully.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use crate::app::Shared;
use crate::client::Peer;
use crate::{api, events, html, pages};

/// The Content-Security-Policy of every response: no script at all, styles from this host.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Longest wait for a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time for a whole request, body and answer (Dovecot's check included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 512;
/// How long in-flight requests get after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const CSS: &str = include_str!("../static/panel.css");

/// All routes, with the guard.
pub fn router(app: Shared) -> Router {
    let max_body = app.config.max_body;
    Router::new()
        .route("/", get(html::root))
        .route("/sign-in", get(html::sign_in_form).post(html::sign_in))
        .route("/sign-out", post(html::sign_out))
        .route("/mfa", get(html::mfa))
        .route("/mfa/next", post(html::next))
        .route("/mfa/confirm", post(html::confirm))
        .route("/mfa/disable", post(html::disable))
        .route("/mfa/replace", post(html::replace))
        .route(
            "/app-passwords",
            get(html::app_passwords).post(html::add_app_password),
        )
        .route("/app-passwords/revoke", post(html::revoke_app_password))
        .route(
            "/recovery-codes",
            get(html::recovery).post(html::new_recovery_codes),
        )
        .route("/static/panel.css", get(css))
        .route(
            "/api/v1/session",
            post(api::create_session).delete(api::delete_session),
        )
        .route("/api/v1/mfa", get(api::status))
        .route("/api/v1/mfa/enrolment", post(api::begin))
        .route("/api/v1/mfa/enrolment/confirm", post(api::confirm))
        .route("/api/v1/mfa/disable", post(api::disable))
        .route(
            "/api/v1/app-passwords",
            get(api::list_app_passwords).post(api::add_app_password),
        )
        .route(
            "/api/v1/app-passwords/{name}",
            delete(api::revoke_app_password),
        )
        .route(
            "/api/v1/recovery-codes",
            get(api::recovery_status).post(api::new_recovery_codes),
        )
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn css() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn fallback(request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        api::not_found().await.into_response()
    } else {
        let notice = pages::Notice::error("There is no such page.");
        (
            StatusCode::NOT_FOUND,
            Html(
                pages::sign_in::notice_page("Not found", &notice, ("/", "Open the panel"))
                    .into_string(),
            ),
        )
            .into_response()
    }
}

fn too_large(api: bool, max: usize) -> Response {
    let message = format!("The request body is larger than {max} bytes.");
    if api {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(serde_json::json!({"error": "too_large", "message": message})),
        )
            .into_response()
    } else {
        (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
    }
}

/// Around every request: refuse a declared body over `max_body`, bound the time, turn the
/// extractors' bare 413 into the API's JSON, and set the security headers on every answer.
async fn guard(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let max = app.config.max_body;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut response = if declared.is_some_and(|n| n > max as u64) {
        too_large(api, max)
    } else {
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE && api && !is_json(&r) => {
                too_large(api, max)
            }
            Ok(r) => r,
            Err(_) => (StatusCode::REQUEST_TIMEOUT, "The request took too long.").into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn is_json(r: &Response) -> bool {
    r.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Serves `listener` until SIGTERM or SIGINT, then lets in-flight requests finish (up to
/// [`SHUTDOWN_GRACE`]).
pub async fn serve(listener: TcpListener, app: Shared) {
    let router = router(app);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and the like: wait a little instead of spinning.
                        events::service(&format!("event=accept_failed detail=\"{}\"", mailmfa::log::clean(&e.to_string())));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let router = router.clone();
                let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(Peer(peer));
                    let mut router = router.clone();
                    async move {
                        let response: Result<Response, Infallible> = router.call(request.map(Body::new)).await;
                        response
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(slot);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    events::service("event=stop reason=signal");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
