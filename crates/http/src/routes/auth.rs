//! Connection test, signup, login and logout.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chatbot_domain::{Email, NewAccount, Password, PasswordAttempt, Username};

use crate::State;
use crate::dto::{CredentialsBody, LoginOut, Notice, SignUpBody};
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::json::Json;
use crate::request_log::ActingUser;
use crate::session::{USER_AGENT, USER_ID};

/// The seed's connection test.
#[utoipa::path(
    method(get, head),
    path = "/api/test",
    tag = "operations",
    summary = "Check that the server is running",
    responses(
        (status = 200, description = "The server is running.", body = Notice,
            example = json!({"message": "Server is running"})),
    ),
)]
pub(super) async fn test() -> HttpResponse {
    HttpResponse::Ok().json(Notice {
        message: "Server is running",
    })
}

/// Registers a user; does not log them in.
#[utoipa::path(
    post,
    path = "/api/signup",
    tag = "auth",
    summary = "Create an account",
    description = "Creates an account; it does not log in (log in next). With an `email`, a \
        link to verify it is mailed there. Rate limited per client address, together with \
        login.",
    request_body = SignUpBody,
    responses(
        (status = 201, description = "The account exists.", body = Notice,
            example = json!({"message": "User created successfully"})),
        (status = 400, description = "`validation_failed`: the username, the password or the email breaks \
            a rule; the sentence says which and why.", body = ErrorBody),
        (status = 409, description = "`conflict`: the username, or the email address, is taken \
            (letter case aside).", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many signups and logins from this \
            address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn sign_up(
    state: web::Data<State>,
    Json(body): Json<SignUpBody>,
) -> Result<HttpResponse, ApiError> {
    let account = NewAccount {
        username: Username::parse(&body.username)?,
        password: Password::parse(&body.password)?,
        email: body.email.as_deref().map(Email::parse).transpose()?,
    };
    state.services.accounts.sign_up(account).await?;
    Ok(HttpResponse::Created().json(Notice {
        message: "User created successfully",
    }))
}

/// Checks the credentials and starts a session under a new key.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "auth",
    summary = "Log in",
    description = "Starts a session: the answer sets the session cookie (`HttpOnly`, \
        `SameSite=Lax`), under a new key at every login. Rate limited per client address, \
        together with signup.",
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie` carries the session cookie.",
            body = LoginOut,
            headers(("Set-Cookie" = String, description = "The session cookie.")),
            example = json!({"message": "Login successful", "user": {"id": 1, "username": "alice"}})),
        (status = 401, description = "`unauthorized`: wrong username or password (one answer \
            for both).", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many signups and logins from this \
            address, or too many failed logins with this username lately (from any address).",
            body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "`unavailable`: too many passwords are being checked at \
            once (a flood of logins); answered at once, try again shortly. Or the database \
            cannot be reached.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait, when busy."))),
    ),
)]
pub(super) async fn log_in(
    request: HttpRequest,
    state: web::Data<State>,
    session: Session,
    Json(body): Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let attempt = PasswordAttempt::new(body.password);
    let user = state
        .services
        .accounts
        .verify_credentials(&body.username, &attempt)
        .await?;
    request.extensions_mut().insert(ActingUser(user.id));
    // A new key at login: a key planted before login is worthless after it.
    session.renew();
    session
        .insert(USER_ID, user.id.get())
        .map_err(|e| ApiError::caused_by(ErrorKind::Internal, e.to_string()))?;
    // For the list of sessions: where this one was opened.
    if let Some(agent) = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
    {
        session
            .insert(USER_AGENT, agent)
            .map_err(|e| ApiError::caused_by(ErrorKind::Internal, e.to_string()))?;
    }
    Ok(HttpResponse::Ok().json(LoginOut {
        message: "Login successful",
        user: (&user).into(),
    }))
}

/// Ends the session, if any: it is deleted from the store and its cookie cleared.
#[utoipa::path(
    method(get, post),
    path = "/api/logout",
    tag = "auth",
    summary = "Log out",
    description = "Ends the session the cookie names, if any: it is deleted on the server and \
        the cookie cleared. Also answers 200 without a session. A page of another site cannot \
        log a user out: a GET whose `Origin` is foreign, or without an `Origin` whose \
        `Sec-Fetch-Site` is `cross-site` (a link followed from another site), is refused like \
        a POST from a foreign origin.",
    security((), ("session" = [])),
    responses(
        (status = 200, description = "Logged out (or was not logged in).", body = Notice,
            example = json!({"message": "Logged out successfully"})),
        (status = 403, description = "`forbidden`: the request comes from a page of another \
            site; the session stays.", body = ErrorBody),
    ),
)]
pub(super) async fn log_out(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().json(Notice {
        message: "Logged out successfully",
    })
}
