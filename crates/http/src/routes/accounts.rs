//! The account of the logged-in user (profile, password, sessions, leaving), and the
//! mailed links that verify an address or reset a password (SPEC §11).

use actix_session::Session;
use actix_web::{HttpResponse, web};
use chatbot_domain::{
    DisplayName, Email, Error, Field, Password, PasswordAttempt, ProfileChange, SecretToken,
    SessionId, UserId, ValidationError,
};

use crate::State;
use crate::dto::{
    ForgotBody, Notice, PasswordBody, PasswordChangeBody, ProfileBody, ProfileOut, ResetBody,
    SessionOut, TokenBody,
};
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::json::Json;
use crate::session::{CurrentSession, CurrentUser};

/// The answer to a password reset asked for, whether or not an account has the address.
const RESET_ON_ITS_WAY: &str =
    "If an account has this email address, a link to reset its password is on its way.";

/// The user's profile.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "account",
    summary = "Your profile",
    security(("session" = [])),
    responses(
        (status = 200, description = "The profile.", body = ProfileOut,
            example = json!({"id": 1, "username": "alice", "display_name": "Alice",
                "email": "alice@example.com", "email_verified": true,
                "created_at": "2026-11-25T06:07:14.123Z"})),
    ),
)]
pub(super) async fn profile(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let profile = state.services.accounts.profile(user).await?;
    Ok(HttpResponse::Ok().json(ProfileOut::from(&profile)))
}

/// Changes the display name or the email address.
#[utoipa::path(
    patch,
    path = "/api/me",
    tag = "account",
    summary = "Change your profile",
    description = "Changes the fields sent. A new email address is unverified, and a link to \
        verify it is mailed there (rate limited per account, with the other mails).",
    request_body(
        content = Option<ProfileBody>,
        description = "The fields to change; left out (an empty body), nothing changes.",
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "The profile as changed.", body = ProfileOut),
        (status = 400, description = "`validation_failed`: the display name or the address \
            breaks a rule; the sentence says which and why.", body = ErrorBody),
        (status = 409, description = "`conflict`: another account has that address (letter \
            case aside).", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many mails asked for this account.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn update_profile(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    Json(body): Json<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    let change = ProfileChange {
        display_name: body
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()?,
        email: body
            .email
            .map(|email| email.as_deref().map(Email::parse).transpose())
            .transpose()?,
    };
    if let Some(Some(email)) = &change.email {
        // Only a new address is mailed, and only a mail spends the budget.
        let current = state.services.accounts.profile(user).await?;
        if !current.email.is_some_and(|had| had.same_as(email)) {
            check_mail(&state, user_key(user))?;
        }
    }
    let profile = state.services.accounts.update_profile(user, change).await?;
    Ok(HttpResponse::Ok().json(ProfileOut::from(&profile)))
}

/// Changes the password: every other session ends, this one gets a new key.
#[utoipa::path(
    post,
    path = "/api/me/password",
    tag = "account",
    summary = "Change your password",
    description = "Every other session of the account ends (their cookies get 401); this one \
        goes on under a new key (the answer sets the cookie anew). A wrong current password \
        counts like a failed login: rate limited per client address, with login.",
    request_body = PasswordChangeBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "Changed.", body = Notice,
            headers(("Set-Cookie" = String, description = "The session cookie, with a new key.")),
            example = json!({"message": "Password changed"})),
        (status = 400, description = "`validation_failed`: the current password is wrong, or \
            the new one breaks a rule; the sentence says which.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many password checks from this \
            address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn change_password(
    state: web::Data<State>,
    current: CurrentSession,
    session: Session,
    Json(body): Json<PasswordChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let new = new_password(&body.new_password)?;
    let attempt = PasswordAttempt::new(body.current_password);
    state
        .services
        .accounts
        .change_password(current.user, current.session, &attempt, new)
        .await
        .map_err(|error| wrong_password_of(error, Field::CurrentPassword))?;
    // A new key: a copy of the old cookie, wherever it went, is worth nothing now.
    session.renew();
    Ok(HttpResponse::Ok().json(Notice {
        message: "Password changed",
    }))
}

/// Deletes the account and everything in it.
#[utoipa::path(
    delete,
    path = "/api/me",
    tag = "account",
    summary = "Delete your account",
    description = "Deletes the account with its conversations, messages and sessions, for \
        good; every cookie of it gets 401 from then on. A wrong password counts like a failed \
        login: rate limited per client address, with login.",
    request_body = PasswordBody,
    security(("session" = [])),
    responses(
        (status = 204, description = "The account is gone; the cookie is cleared."),
        (status = 400, description = "`validation_failed`: the password is wrong.",
            body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many password checks from this \
            address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn delete_account(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    session: Session,
    Json(body): Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let attempt = PasswordAttempt::new(body.password);
    state
        .services
        .accounts
        .delete_account(user, &attempt)
        .await
        .map_err(|error| wrong_password_of(error, Field::Password))?;
    session.purge();
    Ok(HttpResponse::NoContent().finish())
}

/// Where the user is logged in.
#[utoipa::path(
    get,
    path = "/api/me/sessions",
    tag = "account",
    summary = "Your sessions",
    description = "Every live session of the account, the latest used first; `current` marks \
        the one of this request.",
    security(("session" = [])),
    responses(
        (status = 200, description = "The sessions.", body = [SessionOut]),
    ),
)]
pub(super) async fn sessions(
    state: web::Data<State>,
    current: CurrentSession,
) -> Result<HttpResponse, ApiError> {
    let sessions = state.services.sessions.list(current.user).await?;
    let listed: Vec<_> = sessions
        .iter()
        .map(|record| SessionOut::new(record, current.session))
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// Ends one session (on every instance, from its next request).
#[utoipa::path(
    delete,
    path = "/api/me/sessions/{id}",
    tag = "account",
    summary = "End one of your sessions",
    description = "That session's cookie gets 401 from its next request on, and its \
        WebSockets close. Ending the current session logs out.",
    params(("id" = i64, Path, minimum = 1, description = "The session's `id` from the list.")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Ended."),
        (status = 404, description = "`not_found`: no such session of yours (ended, or \
            someone else's).", body = ErrorBody),
    ),
)]
pub(super) async fn end_session(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = SessionId::new(id.into_inner());
    state.services.sessions.end_one(user, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every other session.
#[utoipa::path(
    delete,
    path = "/api/me/sessions",
    tag = "account",
    summary = "End your other sessions",
    description = "Every session of the account but this one ends: their cookies get 401 \
        from their next request on.",
    security(("session" = [])),
    responses(
        (status = 204, description = "Ended."),
    ),
)]
pub(super) async fn end_other_sessions(
    state: web::Data<State>,
    current: CurrentSession,
) -> Result<HttpResponse, ApiError> {
    state
        .services
        .sessions
        .end_all_but(current.user, current.session)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mails a new link to verify the account's address.
#[utoipa::path(
    post,
    path = "/api/me/email/verify",
    tag = "account",
    summary = "Mail a new verification link",
    description = "Older links stop working. Rate limited per client address and per account.",
    security(("session" = [])),
    responses(
        (status = 202, description = "The mail is on its way.", body = Notice,
            example = json!({"message": "A link to verify your email address is on its way."})),
        (status = 400, description = "`validation_failed`: the account has no address, or it \
            is verified already.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many mails asked for.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn send_verification(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, ApiError> {
    check_mail(&state, user_key(user))?;
    state.services.accounts.send_verification(user).await?;
    Ok(HttpResponse::Accepted().json(Notice {
        message: "A link to verify your email address is on its way.",
    }))
}

/// Verifies an address with the token of the mailed link.
#[utoipa::path(
    post,
    path = "/api/email/verify",
    tag = "account",
    summary = "Verify an email address",
    description = "Takes the token of a verification link (`/verify?token=…`); no session \
        needed. A token works once, for 24 hours, and only while the account still has the \
        address it was mailed to.",
    request_body = TokenBody,
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The address is verified.", body = Notice,
            example = json!({"message": "Email address verified"})),
        (status = 400, description = "`invalid_token`: the token is unknown, used or expired.",
            body = ErrorBody),
    ),
)]
pub(super) async fn verify_email(
    state: web::Data<State>,
    Json(body): Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let token = SecretToken::new(body.token);
    state.services.accounts.verify_email(&token).await?;
    Ok(HttpResponse::Ok().json(Notice {
        message: "Email address verified",
    }))
}

/// Mails a link to reset the password, if an account has the address.
#[utoipa::path(
    post,
    path = "/api/password/forgot",
    tag = "account",
    summary = "Forgot your password",
    description = "Answers at once, with the same body whether or not an account has the \
        address (and in the same time: the lookup and the mail happen after the answer). \
        The link works once, for 30 minutes; a newer link voids it. Rate limited per client \
        address and per address asked for.",
    request_body = ForgotBody,
    security((), ("session" = [])),
    responses(
        (status = 202, description = "Taken; a mail goes out if an account has the address.",
            body = Notice, example = json!({"message": RESET_ON_ITS_WAY})),
        (status = 400, description = "`validation_failed`: not an email address.",
            body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many resets asked for.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn forgot_password(
    state: web::Data<State>,
    Json(body): Json<ForgotBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    check_mail(&state, format!("email:{}", email.normalized()))?;
    state.services.accounts.forgot_password(email);
    Ok(HttpResponse::Accepted().json(Notice {
        message: RESET_ON_ITS_WAY,
    }))
}

/// Sets a new password with the token of the mailed link.
#[utoipa::path(
    post,
    path = "/api/password/reset",
    tag = "account",
    summary = "Reset your password",
    description = "Takes the token of a reset link (`/reset?token=…`) and the new password; no \
        session needed. Every session of the account ends; log in with the new password. The \
        token works once; the address it was mailed to counts as verified. Rate limited per \
        client address, with login.",
    request_body = ResetBody,
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The password is changed.", body = Notice,
            example = json!({"message": "Password changed: log in with the new one"})),
        (status = 400, description = "`invalid_token`: the token is unknown, used or expired. \
            `validation_failed`: the new password breaks a rule.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(super) async fn reset_password(
    state: web::Data<State>,
    Json(body): Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let new = new_password(&body.new_password)?;
    let token = SecretToken::new(body.token);
    state.services.accounts.reset_password(&token, new).await?;
    Ok(HttpResponse::Ok().json(Notice {
        message: "Password changed: log in with the new one",
    }))
}

/// A new password, its errors naming the field it came in.
fn new_password(raw: &str) -> Result<Password, ValidationError> {
    Password::parse(raw).map_err(|invalid| ValidationError::new(Field::NewPassword, invalid.rule))
}

/// `error`, a wrong password named as the `field` it came in.
fn wrong_password_of(error: Error, field: Field) -> ApiError {
    match error {
        Error::WrongPassword => ApiError::new(
            ErrorKind::ValidationFailed,
            format!("{field} is wrong: give the password you log in with now."),
        ),
        other => other.into(),
    }
}

/// The per-account mail budget's key of `user`.
fn user_key(user: UserId) -> String {
    format!("user:{}", user.get())
}

/// Counts a mail against the account's budget, when limits are on.
fn check_mail(state: &State, account: String) -> Result<(), ApiError> {
    state
        .limits
        .as_ref()
        .map_or(Ok(()), |limits| limits.check_mail(account))
}
