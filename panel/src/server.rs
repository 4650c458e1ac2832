// One concept, serving HTTP (routes, the guard, the accept loop); long for its 6 tests.
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
        .route("/api/v1/webmail/precheck", post(api::webmail_precheck))
        .route("/api/v1/webmail/credential", post(api::webmail_credential))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Accounts;
    use crate::app::App;
    use crate::config::PanelConfig;
    use axum::http::header::{COOKIE, SET_COOKIE};
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;
    use tower::ServiceExt;

    /// A fake Dovecot that refuses every AUTH and keeps the AUTH lines it got.
    struct FakeDovecot {
        dir: PathBuf,
        lines: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl FakeDovecot {
        fn start() -> FakeDovecot {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).unwrap();
            let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let dir = std::env::temp_dir().join(format!("mailmfa-panel-srv-{name}"));
            std::fs::create_dir(&dir).unwrap();
            let listener = UnixListener::bind(dir.join("auth")).unwrap();
            let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = lines.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let (r, mut w) = stream.into_split();
                        w.write_all(b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nDONE\n")
                            .await
                            .unwrap();
                        let mut r = BufReader::new(r).lines();
                        while let Ok(Some(line)) = r.next_line().await {
                            if line.starts_with("AUTH\t") {
                                seen.lock().unwrap().push(line);
                                let _ = w.write_all(b"FAIL\t1\tuser=x\n").await;
                            }
                        }
                    });
                }
            });
            FakeDovecot { dir, lines }
        }
    }

    impl Drop for FakeDovecot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn app(dovecot: &FakeDovecot, tweak: impl FnOnce(&mut PanelConfig)) -> Router {
        let mut config = PanelConfig {
            auth_socket: dovecot.dir.join("auth"),
            ..PanelConfig::default()
        };
        tweak(&mut config);
        let accounts = Accounts::new(mailmfa::config::Settings::default(), 1000);
        router(App::new(config, accounts, None))
    }

    fn request(method: &str, uri: &str, peer: &str) -> axum::http::request::Builder {
        let peer: SocketAddr = peer.parse().unwrap();
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        b.extensions_mut().unwrap().insert(Peer(peer));
        b
    }

    async fn text(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn cookie(r: &Response) -> String {
        r.headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }

    fn assert_security_headers(r: &Response) {
        let h = r.headers();
        assert_eq!(h.get(CONTENT_SECURITY_POLICY).unwrap(), CSP);
        assert_eq!(h.get(REFERRER_POLICY).unwrap(), "no-referrer");
        assert_eq!(h.get(X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        assert_eq!(h.get(CACHE_CONTROL).unwrap(), "no-store");
    }

    /// GET /sign-in; returns (cookie id, csrf).
    async fn form(router: &Router, peer: &str) -> (String, String) {
        let r = send(
            router,
            request("GET", "/sign-in", peer)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let c = cookie(&r);
        let id = c
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        let page = text(r).await;
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        (id, csrf)
    }

    async fn send(router: &Router, request: axum::http::Request<Body>) -> Response {
        router.clone().oneshot(request).await.unwrap()
    }

    fn post_form(uri: &str, peer: &str, id: &str, body: String) -> axum::http::Request<Body> {
        request("POST", uri, peer)
            .header(COOKIE, format!("mailmfa_session={id}"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn every_response_has_the_security_headers() {
        let d = FakeDovecot::start();
        let router = app(&d, |_| {});
        for (method, uri) in [
            ("GET", "/sign-in"),
            ("GET", "/nope"),
            ("GET", "/static/panel.css"),
            ("GET", "/api/v1/mfa"),
            ("GET", "/mfa"),
            ("PUT", "/mfa"),
        ] {
            let r = send(
                &router,
                request(method, uri, "192.0.2.1:5000")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_security_headers(&r);
        }
    }

    #[tokio::test]
    async fn the_cookie_has_its_flags_and_secure_only_over_tls_through_a_trusted_proxy() {
        let d = FakeDovecot::start();
        let router = app(&d, |c| {
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]
        });
        let r = send(
            &router,
            request("GET", "/sign-in", "127.0.0.1:5000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let c = cookie(&r);
        assert!(
            c.starts_with("mailmfa_session=")
                && c.contains("HttpOnly")
                && c.contains("SameSite=Strict")
                && c.contains("Path=/"),
            "{c}"
        );
        assert!(!c.contains("Secure"), "{c}");
        let r = send(
            &router,
            request("GET", "/sign-in", "127.0.0.1:5000")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(cookie(&r).contains("; Secure"));
        let r = send(
            &router,
            request("GET", "/sign-in", "192.0.2.9:5000")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(
            !cookie(&r).contains("Secure"),
            "an untrusted peer cannot claim TLS"
        );
    }

    #[tokio::test]
    async fn a_sign_in_without_the_form_token_is_refused_before_dovecot() {
        let d = FakeDovecot::start();
        let router = app(&d, |_| {});
        let (id, _) = form(&router, "192.0.2.1:5000").await;
        let r = send(
            &router,
            post_form(
                "/sign-in",
                "192.0.2.1:5000",
                &id,
                "login=a%40b.c&password=pw".into(),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(d.lines.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_sign_in_says_nothing_specific_and_the_limit_then_answers_429() {
        let d = FakeDovecot::start();
        let router = app(&d, |c| c.sign_in_failures = 2);
        let (id, csrf) = form(&router, "192.0.2.44:5000").await;
        let wrong = || {
            post_form(
                "/sign-in",
                "192.0.2.44:5000",
                &id,
                format!("csrf={csrf}&login=alice%40example.com&password=secret123456"),
            )
        };
        for _ in 0..2 {
            let r = send(&router, wrong()).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            let page = text(r).await;
            assert!(page.contains(crate::html::REFUSED));
            assert!(!page.contains("secret123456"));
        }
        {
            let lines = d.lines.lock().unwrap();
            assert_eq!(lines.len(), 2);
            assert!(
                lines[0].contains("\tservice=mailmfa-panel\tsecured\trip=192.0.2.44\tresp="),
                "{}",
                lines[0]
            );
        }
        let r = send(&router, wrong()).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            d.lines.lock().unwrap().len(),
            2,
            "past the limit Dovecot is not asked"
        );
    }

    #[tokio::test]
    async fn api_writes_need_the_csrf_header_and_json() {
        let d = FakeDovecot::start();
        let config = PanelConfig {
            auth_socket: d.dir.join("auth"),
            ..PanelConfig::default()
        };
        let accounts = Accounts::new(mailmfa::config::Settings::default(), 1000);
        let app = App::new(config, accounts, None);
        let login = mailmfa::login::Login::parse(b"alice@example.com").unwrap();
        let (id, csrf) = app
            .sessions
            .create(Some(login), None, crate::app::now())
            .unwrap();
        let router = router(app);
        let call = |csrf: Option<&str>, ct: &str, body: &str| {
            let mut b = request("POST", "/api/v1/mfa/disable", "192.0.2.1:5000")
                .header(COOKIE, format!("mailmfa_session={id}"))
                .header(CONTENT_TYPE, ct);
            if let Some(c) = csrf {
                b = b.header("x-csrf-token", c);
            }
            router
                .clone()
                .oneshot(b.body(Body::from(body.to_string())).unwrap())
        };
        let r = call(None, "application/json", "{\"code\":\"123456\"}")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(text(r).await.contains("\"error\":\"csrf\""));
        let r = call(Some("wrong"), "application/json", "{}").await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = call(Some(&csrf), "text/plain", "{\"code\":\"123456\"}")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(text(r).await.contains("unsupported_media_type"));
        let big = format!("{{\"code\":\"{}\"}}", "1".repeat(20_000));
        let r = call(Some(&csrf), "application/json", &big).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(text(r).await.contains("too_large"));
    }

    #[tokio::test]
    async fn the_api_without_credentials_is_401_json() {
        let d = FakeDovecot::start();
        let router = app(&d, |_| {});
        let r = send(
            &router,
            request("GET", "/api/v1/mfa", "192.0.2.1:5000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(text(r).await.contains("\"error\":\"unauthenticated\""));
        let r = send(
            &router,
            request("GET", "/mfa", "192.0.2.1:5000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
}
