// One concept, the JSON API; long because every route and its documented answer live here.
//! The JSON API (`/api/v1/...`) for hosting control panels and webmail plugins.
//!
//! Three ways to authenticate:
//! - the session cookie (from `POST /api/v1/session` or the pages) plus `X-CSRF-Token` on
//!   every non-GET request;
//! - per request, `Authorization: Basic base64(login:password+code)`: the same sign-in as the
//!   pages (Dovecot, then the code at the end), no CSRF token needed;
//! - `Authorization: Bearer <admin token>` with `X-Mailmfa-Login: <mailbox>`: acts on any
//!   mailbox like `--force` (no code); adding `X-Mailmfa-Owner-Client: <browser address>`
//!   makes it act as that mailbox's owner signed in to webmail (the owner's rules: a code
//!   for every change), which is how the webmail plugin's settings page calls.
//!
//! The webmail plugin's own calls (`/api/v1/webmail/...`, admin token only) are at the end.
//!
//! POST bodies must be `Content-Type: application/json` (else 415). Errors are
//! `{"error": "<stable code>", "message": "..."}` with the contract's status codes.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mailmfa::login::Login;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::accounts::{self, AccountError, Accounts, Face, Proof, Who};
use crate::app::{client_of, now, Shared};
use crate::client::Client;
use crate::events;
use crate::session::{cookie_value, csrf_ok, same, with_cookie};
use crate::signin::{self, Outcome};

/// An API error: status, stable code, message.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1, "message": self.2 }))).into_response()
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        let status = StatusCode::from_u16(accounts::http_status(&e))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError(status, e.code(), e.to_string())
    }
}

fn err(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError(status, code, message.to_string())
}

type ApiResult = Result<Response, ApiError>;

fn unauthenticated() -> ApiError {
    err(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "Sign in first: a session cookie, HTTP Basic with the address and password (+ code), or the admin token.",
    )
}

fn outcome_error(outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::Ok(_) | Outcome::Refused => err(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            crate::html::REFUSED,
        ),
        Outcome::Limited(until) => ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many failed sign-ins from this address; try again after {}.",
                crate::pages::date(until)
            ),
        ),
        Outcome::Unavailable => err(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "The mail server's check did not answer; try again in a few minutes.",
        ),
    }
}

/// Who a request acts for.
struct Caller {
    who: Who,
    admin: bool,
}

/// Authenticates a request; `write` requests need the CSRF header with a cookie session.
async fn caller(
    app: &Shared,
    client: Client,
    headers: &HeaderMap,
    write: bool,
) -> Result<Caller, ApiError> {
    if let Some(auth) = headers.get(AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| unauthenticated())?;
        if let Some(token) = auth.strip_prefix("Bearer ") {
            return admin(app, client, headers, token.trim());
        }
        if let Some(basic) = auth.strip_prefix("Basic ") {
            let decoded = Zeroizing::new(
                STANDARD
                    .decode(basic.trim())
                    .map_err(|_| unauthenticated())?,
            );
            let text = std::str::from_utf8(&decoded).map_err(|_| unauthenticated())?;
            let (login, password) = text.split_once(':').ok_or_else(unauthenticated)?;
            let password = Zeroizing::new(password.to_string());
            return match signin::sign_in(app, client.ip, Face::Api, login, password).await {
                Outcome::Ok(login) => Ok(Caller {
                    who: Who {
                        login,
                        face: Face::Api,
                        client: client.ip,
                    },
                    admin: false,
                }),
                other => Err(outcome_error(other)),
            };
        }
        return Err(unauthenticated());
    }
    let id = cookie_value(headers).ok_or_else(unauthenticated)?;
    let session = app
        .sessions
        .get(&id, now())
        .map_err(|_| unauthenticated())?;
    let login = session.login.clone().ok_or_else(unauthenticated)?;
    if write {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !csrf_ok(&session, sent) {
            return Err(err(
                StatusCode::FORBIDDEN,
                "csrf",
                "Send the session's CSRF token (from POST /api/v1/session) in the X-CSRF-Token header.",
            ));
        }
    }
    Ok(Caller {
        who: Who {
            login,
            face: Face::Api,
            client: client.ip,
        },
        admin: false,
    })
}

/// Checks the admin token (failures count against the caller's address like sign-ins).
fn check_token(app: &Shared, client: Client, token: &str) -> Result<(), ApiError> {
    if let Err(until) = app.limit.check(client.ip, now()) {
        return Err(outcome_error(Outcome::Limited(until)));
    }
    if app.admin_token.as_ref().is_some_and(|t| same(t, token)) {
        return Ok(());
    }
    app.limit.fail(client.ip, now());
    events::event(
        "admin_token",
        "refused",
        "",
        Some(client.ip),
        "api",
        Some("token"),
    );
    Err(unauthenticated())
}

fn invalid(message: &str) -> ApiError {
    err(StatusCode::BAD_REQUEST, "invalid_input", message)
}

fn admin(
    app: &Shared,
    client: Client,
    headers: &HeaderMap,
    token: &str,
) -> Result<Caller, ApiError> {
    check_token(app, client, token)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let login = header("x-mailmfa-login")
        .and_then(|v| Login::parse(v.as_bytes()).ok())
        .ok_or_else(|| invalid("Name the mailbox in the X-Mailmfa-Login header."))?;
    if let Some(owner) = header("x-mailmfa-owner-client") {
        let ip = owner
            .trim()
            .parse()
            .map_err(|_| invalid("X-Mailmfa-Owner-Client must be the browser's IP address."))?;
        return Ok(Caller {
            who: Who {
                login,
                face: Face::Webmail,
                client: ip,
            },
            admin: false,
        });
    }
    Ok(Caller {
        who: Who {
            login,
            face: Face::Admin,
            client: client.ip,
        },
        admin: true,
    })
}

/// Parses a JSON body (415 without the JSON content type, 400 when it does not parse).
fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, ApiError> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("The JSON body does not fit: {e}"),
        )
    })
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `{"code": "..."}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    #[serde(default)]
    code: Option<Zeroizing<String>>,
}

fn proof(caller: &Caller, code: Option<Zeroizing<String>>) -> Result<Proof, ApiError> {
    if caller.admin {
        return Ok(Proof::Force);
    }
    code.map(Proof::Code).ok_or_else(|| {
        err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_code_format",
            "Send a current code in `code`.",
        )
    })
}

/// Checks `proof` when it is a code (a forced action needs none).
fn check(accounts: &Accounts, who: &Who, proof: &Proof) -> Result<(), AccountError> {
    if let Proof::Code(code) = proof {
        accounts.check_code(who, code)?;
    }
    Ok(())
}

/// What every API handler starts from: the state, the request's client and its headers.
pub struct Req {
    app: Shared,
    client: Client,
    headers: HeaderMap,
}

impl FromRequestParts<Shared> for Req {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Req, Response> {
        Ok(Req {
            app: app.clone(),
            client: client_of(parts, app).await?,
            headers: parts.headers.clone(),
        })
    }
}

impl Req {
    /// Who the request acts for (`write`: a cookie session needs the CSRF header).
    async fn caller(&self, write: bool) -> Result<Caller, ApiError> {
        caller(&self.app, self.client, &self.headers, write).await
    }

    /// The JSON body.
    fn body<T: DeserializeOwned>(&self, bytes: &Bytes) -> Result<T, ApiError> {
        body(&self.headers, bytes)
    }

    /// A `{"code"}` body, which may be left out when `empty_ok`.
    fn code_body(&self, bytes: &Bytes, empty_ok: bool) -> Result<CodeBody, ApiError> {
        if bytes.is_empty() && empty_ok {
            Ok(CodeBody { code: None })
        } else {
            self.body(bytes)
        }
    }

    /// The proof of an action: the admin's force (body optional) or the body's code.
    fn proof(&self, caller: &Caller, bytes: &Bytes) -> Result<Proof, ApiError> {
        let b = self.code_body(bytes, caller.admin)?;
        proof(caller, b.code)
    }

    /// Runs `f` for the caller's mailbox on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&Accounts, &Who) -> T + Send + 'static,
    ) -> T {
        self.app.run(&caller.who, f).await
    }
}

/// `{"login","password"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    login: String,
    password: Zeroizing<String>,
}

/// POST /api/v1/session: signs in and sets the session cookie.
pub async fn create_session(req: Req, bytes: Bytes) -> ApiResult {
    let (app, client) = (&req.app, req.client);
    let b: SessionBody = req.body(&bytes)?;
    match signin::sign_in(app, client.ip, Face::Api, &b.login, b.password).await {
        Outcome::Ok(login) => {
            let old = cookie_value(&req.headers);
            let (id, csrf) = app
                .sessions
                .create(Some(login), old.as_deref(), now())
                .map_err(|_| {
                    err(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "No random numbers.",
                    )
                })?;
            Ok(with_cookie(ok(json!({ "csrf": csrf })), &id, client.secure))
        }
        other => Err(outcome_error(other)),
    }
}

/// DELETE /api/v1/session: signs out.
pub async fn delete_session(req: Req) -> ApiResult {
    let caller = req.caller(true).await?;
    if let Some(id) = cookie_value(&req.headers) {
        req.app.sessions.remove(&id);
    }
    events::signed_out(caller.who.login.as_str(), req.client.ip, "api");
    Ok(with_cookie(no_content(), "", req.client.secure))
}

/// GET /api/v1/mfa.
pub async fn status(req: Req) -> ApiResult {
    let caller = req.caller(false).await?;
    let s = req
        .run(&caller, |accounts, who| accounts.status(who))
        .await?;
    Ok(ok(json!({
        "login": caller.who.login.as_str(),
        "mfa": if s.on { "on" } else { "off" },
        "pending_expires": s.pending_expires,
        "created": s.created,
        "digits": s.digits,
        "period": s.period,
        "app_passwords": s.app_passwords,
        "recovery_codes_left": s.recovery_left,
    })))
}

/// POST /api/v1/mfa/enrolment: a new pending secret (`code` only when replacing an active one).
pub async fn begin(req: Req, bytes: Bytes) -> ApiResult {
    let caller = req.caller(true).await?;
    let b = req.code_body(&bytes, true)?;
    let admin = caller.admin;
    let e = req
        .run(&caller, move |accounts, who| {
            let on = accounts.status(who)?.on;
            let replace = match (on, admin, b.code) {
                (false, _, _) => None,
                (true, true, _) => Some(Proof::Force),
                (true, false, Some(code)) => Some(Proof::Code(code)),
                (true, false, None) => None, // the layer answers mfa_already_on
            };
            accounts.begin(who, replace.as_ref())
        })
        .await?;
    let svg = crate::pages::qr::svg(&e.uri).ok_or_else(|| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The key does not fit a QR code.",
        )
    })?;
    Ok(created(json!({
        "uri": e.uri.as_str(),
        "svg": svg,
        "key": e.key.as_str(),
        "expires": e.expires_at,
    })))
}

/// POST /api/v1/mfa/enrolment/confirm.
pub async fn confirm(req: Req, bytes: Bytes) -> ApiResult {
    let caller = req.caller(true).await?;
    let b: CodeBody = req.body(&bytes)?;
    let code = b.code.ok_or_else(|| {
        err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_code_format",
            "Send the code from the new key in `code`.",
        )
    })?;
    req.run(&caller, move |accounts, who| accounts.confirm(who, &code))
        .await?;
    Ok(ok(json!({ "mfa": "on" })))
}

/// POST /api/v1/mfa/disable.
pub async fn disable(req: Req, bytes: Bytes) -> ApiResult {
    let caller = req.caller(true).await?;
    let proof = req.proof(&caller, &bytes)?;
    req.run(&caller, move |accounts, who| accounts.disable(who, &proof))
        .await?;
    Ok(ok(json!({ "mfa": "off" })))
}

/// GET /api/v1/app-passwords.
pub async fn list_app_passwords(req: Req) -> ApiResult {
    let caller = req.caller(false).await?;
    // Without MFA there are no app passwords: an empty list, not an error (adding one says why).
    let list = match req
        .run(&caller, |accounts, who| accounts.list_app_passwords(who))
        .await
    {
        Err(AccountError::NotOn) => Vec::new(),
        other => other?,
    };
    let items: Vec<Value> = list
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "services": p.services,
                "created": p.created,
                "expires": p.expires,
                "last_used": p.last_used,
                "last_client": p.last_client,
                "from": p.from,
                "webmail": accounts::is_session_credential(&p.name),
            })
        })
        .collect();
    Ok(ok(json!({ "app_passwords": items })))
}

/// `{"label","services","expires","code"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    label: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    code: Option<Zeroizing<String>>,
}

/// POST /api/v1/app-passwords.
pub async fn add_app_password(req: Req, bytes: Bytes) -> ApiResult {
    let caller = req.caller(true).await?;
    let b: AddBody = req.body(&bytes)?;
    let expires = match b.expires.as_deref() {
        None | Some("") => None,
        Some(text) => match mailmfa::config::parse_duration(text) {
            Some(d) if d > 0 => Some(now() + d),
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    "`expires` must be a duration such as 90d, or null.",
                ))
            }
        },
    };
    let proof = proof(&caller, b.code)?;
    let new = req
        .run(&caller, move |accounts, who| {
            let services = accounts::parse_services(&b.services.join(","))?;
            check(accounts, who, &proof)?;
            accounts.add_app_password(who, b.label.trim(), &services, expires)
        })
        .await?;
    Ok(created(json!({
        "name": new.name,
        "password": new.password.as_str(),
        "services": new.services,
        "created": new.created,
        "expires": new.expires,
    })))
}

/// DELETE /api/v1/app-passwords/{name}.
pub async fn revoke_app_password(req: Req, Path(name): Path<String>) -> ApiResult {
    let caller = req.caller(true).await?;
    req.run(&caller, move |accounts, who| {
        accounts.revoke_app_password(who, &name)
    })
    .await?;
    Ok(no_content())
}

/// GET /api/v1/recovery-codes.
pub async fn recovery_status(req: Req) -> ApiResult {
    let caller = req.caller(false).await?;
    let s = req
        .run(&caller, |accounts, who| accounts.status(who))
        .await?;
    Ok(ok(
        json!({ "left": s.recovery_left, "total": s.recovery_total }),
    ))
}

/// POST /api/v1/recovery-codes.
pub async fn new_recovery_codes(req: Req, bytes: Bytes) -> ApiResult {
    let caller = req.caller(true).await?;
    let proof = req.proof(&caller, &bytes)?;
    let codes = req
        .run(&caller, move |accounts, who| {
            check(accounts, who, &proof)?;
            accounts.new_recovery_codes(who)
        })
        .await?;
    let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    Ok(created(json!({ "codes": codes })))
}

/// The browser's address as the webmail plugin sends it in `client`.
fn browser(text: &str) -> Result<std::net::IpAddr, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| invalid("`client` must be the browser's IP address."))
}

/// The admin token alone (the webmail plugin's calls), with no mailbox header.
fn webmail_caller(req: &Req) -> Result<(), ApiError> {
    let token = req
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthenticated)?;
    check_token(&req.app, req.client, token.trim())
}

/// `{"login","password","client"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecheckBody {
    login: String,
    password: Zeroizing<String>,
    client: String,
}

/// POST /api/v1/webmail/precheck: is the password (without a code) right, and does the
/// mailbox have MFA? The webmail plugin asks before it shows the code step.
pub async fn webmail_precheck(req: Req, bytes: Bytes) -> ApiResult {
    webmail_caller(&req)?;
    let b: PrecheckBody = req.body(&bytes)?;
    let client = browser(&b.client)?;
    let login = match signin::precheck(&req.app, client, &b.login, b.password).await {
        Outcome::Ok(login) => login,
        other => return Err(outcome_error(other)),
    };
    let who = Who {
        login,
        face: Face::Webmail,
        client,
    };
    let status = req
        .app
        .run(&who, |accounts, who| accounts.status(who))
        .await?;
    Ok(ok(json!({
        "login": who.login.as_str(),
        "mfa": if status.on { "on" } else { "off" },
    })))
}

/// `{"client","from","services","lifetime"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    client: String,
    from: Vec<String>,
    services: Vec<String>,
    lifetime: String,
}

/// POST /api/v1/webmail/credential: a session credential for a webmail login that has just
/// been made with password+code (X-Mailmfa-Login names the mailbox).
pub async fn webmail_credential(req: Req, bytes: Bytes) -> ApiResult {
    let caller = req.caller(true).await?;
    if !caller.admin {
        return Err(unauthenticated());
    }
    let b: CredentialBody = req.body(&bytes)?;
    let client = browser(&b.client)?;
    let lifetime = mailmfa::config::parse_duration(&b.lifetime)
        .ok_or_else(|| invalid("`lifetime` must be a duration such as 1h."))?;
    let who = Who {
        face: Face::Webmail,
        client,
        ..caller.who
    };
    let new = req
        .app
        .run(&who, move |accounts, who| {
            accounts.new_session_credential(who, &b.from, &b.services, lifetime)
        })
        .await?;
    Ok(created(json!({
        "name": new.name,
        "password": new.password.as_str(),
        "expires": new.expires,
    })))
}

/// Any other path under /api/.
pub async fn not_found() -> ApiError {
    err(StatusCode::NOT_FOUND, "not_found", "No such API endpoint.")
}
