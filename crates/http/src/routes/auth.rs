//! Connection test, signup, login and logout.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use chatbot_domain::{Password, PasswordAttempt, Username};

use crate::dto::{CredentialsBody, LoginOut, Notice};
use crate::error::{ApiError, ErrorKind};
use crate::json::Json;
use crate::session::USER_ID;
use crate::{Adapters, AppState};

pub(super) async fn test() -> HttpResponse {
    HttpResponse::Ok().json(Notice {
        message: "Server is running",
    })
}

/// Registers a user; does not log them in.
pub(super) async fn sign_up<A: Adapters>(
    state: web::Data<AppState<A>>,
    Json(body): Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    state.accounts.sign_up(username, password).await?;
    Ok(HttpResponse::Created().json(Notice {
        message: "User created successfully",
    }))
}

/// Checks the credentials and starts a session under a new key.
pub(super) async fn log_in<A: Adapters>(
    state: web::Data<AppState<A>>,
    session: Session,
    Json(body): Json<CredentialsBody>,
) -> Result<HttpResponse, ApiError> {
    let attempt = PasswordAttempt::new(body.password);
    let user = state
        .accounts
        .verify_credentials(&body.username, &attempt)
        .await?;
    // A new key at login: a key planted before login is worthless after it.
    session.renew();
    session
        .insert(USER_ID, user.id.get())
        .map_err(|e| ApiError::caused_by(ErrorKind::Internal, e.to_string()))?;
    Ok(HttpResponse::Ok().json(LoginOut {
        message: "Login successful",
        user: (&user).into(),
    }))
}

/// Ends the session, if any: it is deleted from the store and its cookie cleared.
pub(super) async fn log_out(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().json(Notice {
        message: "Logged out successfully",
    })
}
