//! The HTML routes: the sign-in form, the MFA flow, app passwords, recovery codes, sign-out.
//!
//! Every POST checks the session's CSRF token (the sign-in form: its pre-session's). Actions
//! that reveal a secret or turn MFA off check a code typed on that page (through the account
//! layer, as client "mailmfa-panel"). After a change, a redirect (303) to a page that shows
//! `#message`; a secret (new key, app password, recovery codes) is shown in the answer to the
//! POST itself and never stored in the session, a URL or a hidden field.

// An early-return `Response` (a redirect, an error page) is the natural Err of these helpers.
#![allow(clippy::result_large_err)]

use axum::extract::{Form, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use mailmfa::login::Login;
use maud::Markup;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::accounts::{self, blocking, AccountError, Face, Proof, Who};
use crate::app::{now, Shared};
use crate::client::{Client, Peer};
use crate::events;
use crate::pages::layout::SignedIn;
use crate::pages::mfa::{EnrolView, MfaView};
use crate::pages::{self, Notice};
use crate::session::{cookie_value, csrf_ok, set_cookie, Flash, Lookup, Session};
use crate::signin::{self, Outcome};

/// The one message of every refused sign-in.
pub const REFUSED: &str = "The address, password or code is not right.";

/// A signed-in request.
struct Ctx {
    id: String,
    session: Session,
    who: Who,
    secure: bool,
}

impl Ctx {
    fn user(&self) -> SignedIn<'_> {
        SignedIn {
            login: self.who.login.as_str(),
            csrf: &self.session.csrf,
        }
    }

    fn notice(&self) -> Notice {
        match &self.session.flash {
            Some(Flash::Message(m)) => Notice::message(m.clone()),
            Some(Flash::Error(e)) => Notice::error(e.clone()),
            None => Notice::default(),
        }
    }
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_str(to).expect("a path"))],
    )
        .into_response()
}

fn with_cookie(mut response: Response, id: &str, secure: bool) -> Response {
    if let Ok(v) = HeaderValue::from_str(&set_cookie(id, secure)) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

fn internal() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::sign_in::notice_page(
            "Something went wrong",
            &Notice::error("The panel could not finish this. Please try again; if it keeps happening, tell your mail provider."),
            ("/", "Back"),
        ),
    )
}

/// Sends the browser to the sign-in page with `flash`, on a fresh pre-session.
fn to_sign_in(app: &Shared, client: &Client, flash: Option<Flash>) -> Response {
    match app.sessions.create(None, None, now()) {
        Ok((id, _)) => {
            if let Some(f) = flash {
                app.sessions.flash(&id, f);
            }
            with_cookie(see_other("/sign-in"), &id, client.secure)
        }
        Err(_) => internal(),
    }
}

/// The signed-in session of a request, or the redirect to the sign-in page.
fn signed_in(app: &Shared, peer: &Peer, headers: &HeaderMap) -> Result<Ctx, Response> {
    let client = app.client(Some(peer), headers);
    let Some(id) = cookie_value(headers) else {
        return Err(see_other("/sign-in"));
    };
    match app.sessions.get(&id, now()) {
        Ok(session) => match session.login.clone() {
            Some(login) => Ok(Ctx {
                id,
                session,
                who: Who {
                    login,
                    face: Face::Panel,
                    client: client.ip,
                },
                secure: client.secure,
            }),
            None => Err(see_other("/sign-in")),
        },
        Err(ended) => {
            let why = match ended.why {
                Lookup::Unknown => return Err(see_other("/sign-in")),
                Lookup::Idle => "idle",
                Lookup::Lifetime => "lifetime",
            };
            let user = ended.login.as_ref().map(Login::as_str).unwrap_or("");
            events::event(
                "session_end",
                "expired",
                user,
                Some(client.ip),
                "panel",
                Some(why),
            );
            Err(to_sign_in(
                app,
                &client,
                Some(Flash::Error(
                    "Your session has ended. Please sign in again.".to_string(),
                )),
            ))
        }
    }
}

/// A signed-in POST with the right CSRF token.
fn signed_in_post(
    app: &Shared,
    peer: &Peer,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Ctx, Response> {
    let ctx = signed_in(app, peer, headers)?;
    if !csrf_ok(&ctx.session, Some(csrf)) {
        return Err(expired_form());
    }
    Ok(ctx)
}

fn expired_form() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::sign_in::notice_page(
            "Form expired",
            &Notice::error("This form has expired or did not come from this page. Please open the page again and retry."),
            ("/", "Open the panel"),
        ),
    )
}

/// GET /: to the MFA page when signed in, else to the sign-in page.
pub async fn root(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    match signed_in(&app, &peer, &headers) {
        Ok(_) => see_other("/mfa"),
        Err(r) => r,
    }
}

/// GET /sign-in.
pub async fn sign_in_form(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let client = app.client(Some(&peer), &headers);
    if let Some(id) = cookie_value(&headers) {
        if let Ok(s) = app.sessions.get(&id, now()) {
            if s.login.is_some() {
                return see_other("/mfa");
            }
            let notice = match s.flash {
                Some(Flash::Message(m)) => Notice::message(m),
                Some(Flash::Error(e)) => Notice::error(e),
                None => Notice::default(),
            };
            return page(
                StatusCode::OK,
                pages::sign_in::sign_in(&s.csrf, "", &notice),
            );
        }
    }
    match app.sessions.create(None, None, now()) {
        Ok((id, csrf)) => with_cookie(
            page(
                StatusCode::OK,
                pages::sign_in::sign_in(&csrf, "", &Notice::default()),
            ),
            &id,
            client.secure,
        ),
        Err(_) => internal(),
    }
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: Zeroizing<String>,
}

/// POST /sign-in.
pub async fn sign_in(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let client = app.client(Some(&peer), &headers);
    let old = cookie_value(&headers);
    let pre = old
        .as_deref()
        .and_then(|id| app.sessions.get(id, now()).ok());
    let Some(pre) = pre.filter(|s| csrf_ok(s, Some(&form.csrf))) else {
        // No (or another) form token: a new form, nothing checked.
        return match app.sessions.create(None, old.as_deref(), now()) {
            Ok((id, csrf)) => with_cookie(
                page(
                    StatusCode::FORBIDDEN,
                    pages::sign_in::sign_in(
                        &csrf,
                        &form.login,
                        &Notice::error("The sign-in form had expired. Please type your password (and code) again."),
                    ),
                ),
                &id,
                client.secure,
            ),
            Err(_) => internal(),
        };
    };
    let login_typed = form.login.clone();
    match signin::sign_in(&app, client.ip, Face::Panel, &form.login, form.password).await {
        Outcome::Ok(login) => match app.sessions.create(Some(login), old.as_deref(), now()) {
            Ok((id, _)) => with_cookie(see_other("/mfa"), &id, client.secure),
            Err(_) => internal(),
        },
        Outcome::Refused => page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in::sign_in(&pre.csrf, &login_typed, &Notice::error(REFUSED)),
        ),
        Outcome::Limited(until) => {
            let minutes = until.saturating_sub(now()).div_ceil(60).max(1);
            page(
                StatusCode::TOO_MANY_REQUESTS,
                pages::sign_in::sign_in(
                    &pre.csrf,
                    &login_typed,
                    &Notice::error(format!(
                        "Too many failed sign-ins from your address. Please wait {minutes} minute{} and try again.",
                        if minutes == 1 { "" } else { "s" }
                    )),
                ),
            )
        }
        Outcome::Unavailable => page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::sign_in::sign_in(
                &pre.csrf,
                &login_typed,
                &Notice::error("Signing in is not possible right now: the mail server did not answer. Please try again in a few minutes."),
            ),
        ),
    }
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// POST /sign-out.
pub async fn sign_out(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    app.sessions.remove(&ctx.id);
    events::event(
        "sign_out",
        "ok",
        ctx.who.login.as_str(),
        Some(ctx.who.client),
        "panel",
        None,
    );
    to_sign_in(
        &app,
        &Client {
            ip: ctx.who.client,
            secure: ctx.secure,
        },
        Some(Flash::Message("You are signed out.".to_string())),
    )
}

async fn mfa_page(app: &Shared, ctx: &Ctx, notice: Notice) -> Response {
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    match blocking(move || accounts.status(&who)).await {
        Ok(s) => {
            let view = MfaView {
                on: s.on,
                created: s.created,
                pending_expires: s.pending_expires,
                app_passwords: s.app_passwords,
                recovery_left: s.recovery_left,
            };
            page(StatusCode::OK, pages::mfa::mfa(&ctx.user(), &view, &notice))
        }
        Err(e) => error_page(ctx, &e),
    }
}

fn error_page(ctx: &Ctx, e: &AccountError) -> Response {
    let status =
        StatusCode::from_u16(accounts::http_status(e)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    page(
        status,
        pages::layout::page(
            "MFA",
            Some(&ctx.user()),
            pages::layout::Nav::Mfa,
            &Notice::error(e.to_string()),
            maud::html! { p { a href="/mfa" { "Back to the MFA page" } } },
        ),
    )
}

/// GET /mfa.
pub async fn mfa(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    match signed_in(&app, &peer, &headers) {
        Ok(ctx) => {
            let notice = ctx.notice();
            mfa_page(&app, &ctx, notice).await
        }
        Err(r) => r,
    }
}

/// The Status drop-down.
#[derive(Deserialize)]
pub struct NextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

const DISABLE_TEXT: &str = "To turn MFA off, type a current code from your authenticator app (or one of your recovery codes) and Save.";
const REPLACE_TEXT: &str = "MFA is on. To move it to a new phone, type a current code from your old phone (or a recovery code) and Save; you will then scan a new QR code. Until you confirm the new code, the old phone keeps working.";

/// POST /mfa/next.
pub async fn next(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<NextForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let status = match blocking(move || accounts.status(&who)).await {
        Ok(s) => s,
        Err(e) => return error_page(&ctx, &e),
    };
    match (form.status.as_str(), status.on) {
        ("enabled", false) => {
            let accounts = app.accounts.clone();
            let who = ctx.who.clone();
            let digits = status.digits;
            match blocking(move || accounts.begin(&who, None)).await {
                Ok(e) => enrol_page(&ctx, &e, digits, Notice::default(), StatusCode::OK),
                Err(e) => mfa_page(&app, &ctx, Notice::error(e.to_string())).await,
            }
        }
        ("enabled", true) => page(
            StatusCode::OK,
            pages::mfa::ask_code(
                &ctx.user(),
                "New phone",
                "/mfa/replace",
                REPLACE_TEXT,
                &Notice::default(),
            ),
        ),
        ("disabled", true) => page(
            StatusCode::OK,
            pages::mfa::ask_code(
                &ctx.user(),
                "Turn off MFA",
                "/mfa/disable",
                DISABLE_TEXT,
                &Notice::default(),
            ),
        ),
        ("disabled", false) => {
            app.sessions.flash(
                &ctx.id,
                Flash::Message("MFA is already off; nothing changed.".to_string()),
            );
            see_other("/mfa")
        }
        _ => {
            mfa_page(
                &app,
                &ctx,
                Notice::error("Choose Enabled or Disabled, then Next."),
            )
            .await
        }
    }
}

fn enrol_page(
    ctx: &Ctx,
    e: &accounts::Enrolment,
    digits: u32,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let Some(svg) = pages::qr::svg(&e.uri) else {
        return internal();
    };
    let view = EnrolView {
        svg: &svg,
        key: &e.key,
        uri: &e.uri,
        expires: e.expires_at,
        digits,
    };
    page(status, pages::mfa::enrol(&ctx.user(), &view, &notice))
}

/// The Challenge field.
#[derive(Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge: Zeroizing<String>,
}

/// POST /mfa/confirm.
pub async fn confirm(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let typed = form.challenge;
    let result = blocking(move || match accounts.confirm(&who, &typed) {
        Ok(()) => Ok(()),
        Err(e) => {
            // A wrong code: show the same QR again (the pending enrolment as it stands).
            let again = accounts.pending(&who).ok().flatten();
            let digits = accounts.status(&who).map(|s| s.digits).unwrap_or(6);
            Err((e, again, digits))
        }
    })
    .await;
    match result {
        Ok(()) => {
            app.sessions.flash(
                &ctx.id,
                Flash::Message("MFA is on. From now on, sign in with your password followed by the current code from your app.".to_string()),
            );
            see_other("/mfa")
        }
        Err((e, Some(pending), digits)) => {
            let status = StatusCode::from_u16(accounts::http_status(&e))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let digits = if pending.record.digits > 0 {
                pending.record.digits
            } else {
                digits
            };
            enrol_page(&ctx, &pending, digits, Notice::error(e.to_string()), status)
        }
        Err((e, None, _)) => {
            app.sessions.flash(&ctx.id, Flash::Error(e.to_string()));
            see_other("/mfa")
        }
    }
}

/// POST /mfa/disable.
pub async fn disable(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let proof = Proof::Code(form.challenge);
    match blocking(move || accounts.disable(&who, &proof)).await {
        Ok(_) => {
            app.sessions.flash(
                &ctx.id,
                Flash::Message(
                    "MFA is off. You can delete the entry from your authenticator app.".to_string(),
                ),
            );
            see_other("/mfa")
        }
        Err(e) => {
            let status = StatusCode::from_u16(accounts::http_status(&e))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(
                status,
                pages::mfa::ask_code(
                    &ctx.user(),
                    "Turn off MFA",
                    "/mfa/disable",
                    DISABLE_TEXT,
                    &Notice::error(e.to_string()),
                ),
            )
        }
    }
}

/// POST /mfa/replace: a code of the old secret, then the enrolment page of a new one.
pub async fn replace(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let proof = Proof::Code(form.challenge);
    match blocking(move || {
        let digits = accounts.settings().digits;
        accounts.begin(&who, Some(&proof)).map(|e| (e, digits))
    })
    .await
    {
        Ok((e, digits)) => {
            let digits = if e.record.digits > 0 {
                e.record.digits
            } else {
                digits
            };
            enrol_page(&ctx, &e, digits, Notice::default(), StatusCode::OK)
        }
        Err(e) => {
            let status = StatusCode::from_u16(accounts::http_status(&e))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(
                status,
                pages::mfa::ask_code(
                    &ctx.user(),
                    "New phone",
                    "/mfa/replace",
                    REPLACE_TEXT,
                    &Notice::error(e.to_string()),
                ),
            )
        }
    }
}

async fn app_passwords_page(
    app: &Shared,
    ctx: &Ctx,
    new: Option<accounts::NewAppPassword>,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let loaded = blocking(move || {
        let s = accounts.status(&who)?;
        let list = if s.on {
            accounts.list_app_passwords(&who)?
        } else {
            Vec::new()
        };
        Ok::<_, AccountError>((s.on, list))
    })
    .await;
    match loaded {
        Ok((on, list)) => page(
            status,
            pages::app_passwords::app_passwords(&ctx.user(), on, &list, new.as_ref(), &notice),
        ),
        Err(e) => error_page(ctx, &e),
    }
}

/// GET /app-passwords.
pub async fn app_passwords(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    match signed_in(&app, &peer, &headers) {
        Ok(ctx) => {
            let notice = ctx.notice();
            app_passwords_page(&app, &ctx, None, notice, StatusCode::OK).await
        }
        Err(r) => r,
    }
}

/// The add form.
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    services: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    challenge: Zeroizing<String>,
}

/// POST /app-passwords.
pub async fn add_app_password(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let expires = match form.expires.trim() {
        "" => None,
        text => match mailmfa::config::parse_duration(text) {
            Some(d) if d > 0 => Some(now() + d),
            _ => {
                return app_passwords_page(
                    &app,
                    &ctx,
                    None,
                    Notice::error("Choose when the app password expires."),
                    StatusCode::BAD_REQUEST,
                )
                .await
            }
        },
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let result = blocking(move || {
        let services = accounts::parse_services(form.services.trim())?;
        accounts.check_code(&who, &form.challenge)?;
        accounts.add_app_password(&who, form.label.trim(), &services, expires)
    })
    .await;
    match result {
        Ok(new) => {
            let notice = Notice::message(format!("The app password {} is ready.", new.name));
            app_passwords_page(&app, &ctx, Some(new), notice, StatusCode::OK).await
        }
        Err(e) => {
            let status = StatusCode::from_u16(accounts::http_status(&e))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            app_passwords_page(&app, &ctx, None, Notice::error(e.to_string()), status).await
        }
    }
}

/// The revoke button's form.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// POST /app-passwords/revoke.
pub async fn revoke_app_password(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let name = form.name.clone();
    let flash = match blocking(move || accounts.revoke_app_password(&who, &name)).await {
        Ok(()) => Flash::Message(format!(
            "The app password {} is revoked: a mail program that uses it can no longer sign in.",
            form.name
        )),
        Err(e) => Flash::Error(e.to_string()),
    };
    app.sessions.flash(&ctx.id, flash);
    see_other("/app-passwords")
}

async fn recovery_page(
    app: &Shared,
    ctx: &Ctx,
    codes: Option<Vec<String>>,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    match blocking(move || accounts.status(&who)).await {
        Ok(s) => page(
            status,
            pages::recovery::recovery(
                &ctx.user(),
                s.on,
                s.recovery_left,
                s.recovery_total,
                codes.as_deref(),
                &notice,
            ),
        ),
        Err(e) => error_page(ctx, &e),
    }
}

/// GET /recovery-codes.
pub async fn recovery(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    match signed_in(&app, &peer, &headers) {
        Ok(ctx) => {
            let notice = ctx.notice();
            recovery_page(&app, &ctx, None, notice, StatusCode::OK).await
        }
        Err(r) => r,
    }
}

/// POST /recovery-codes.
pub async fn new_recovery_codes(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let ctx = match signed_in_post(&app, &peer, &headers, &form.csrf) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accounts = app.accounts.clone();
    let who = ctx.who.clone();
    let result = blocking(move || {
        accounts.check_code(&who, &form.challenge)?;
        accounts.new_recovery_codes(&who)
    })
    .await;
    match result {
        Ok(codes) => {
            let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            let notice =
                Notice::message("New recovery codes are ready; the old ones no longer work.");
            recovery_page(&app, &ctx, Some(codes), notice, StatusCode::OK).await
        }
        Err(e) => {
            let status = StatusCode::from_u16(accounts::http_status(&e))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            recovery_page(&app, &ctx, None, Notice::error(e.to_string()), status).await
        }
    }
}
