//! Every error the API answers with: a status and `{"error": "...", "code": "..."}`.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use chatbot_domain::BoxError;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// The kinds of error the API reports, each with its status and `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: malformed JSON, a missing or mistyped field.
    BadRequest,
    /// 400: a field broke a rule.
    ValidationFailed,
    /// 400: a mailed token that is unknown, used or expired.
    InvalidToken,
    /// 401: no valid session, or wrong credentials.
    Unauthorized,
    /// 403: refused whoever asks.
    Forbidden,
    /// 404: unknown route, or unknown or foreign id.
    NotFound,
    /// 405: known path, wrong method.
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: username taken, or a reply still being written.
    Conflict,
    /// 413: body over the limit.
    PayloadTooLarge,
    /// 415: a body that is not JSON.
    UnsupportedMediaType,
    /// 429: over a rate limit.
    RateLimited,
    /// 500: a bug; details only in the log.
    Internal,
    /// 502: the bot did not reply.
    BotUnavailable,
    /// 503: the database cannot be reached.
    Unavailable,
}

impl ErrorKind {
    /// Every kind, in the order of their statuses.
    pub const ALL: [Self; 15] = [
        Self::BadRequest,
        Self::ValidationFailed,
        Self::InvalidToken,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::Internal,
        Self::BotUnavailable,
        Self::Unavailable,
    ];

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::ValidationFailed | Self::InvalidToken => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BotUnavailable => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `code` field: stable, for programs.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::ValidationFailed => "validation_failed",
            Self::InvalidToken => "invalid_token",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::BotUnavailable => "bot_unavailable",
            Self::Unavailable => "unavailable",
        }
    }

    /// The sentence shown when nothing more specific is known.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::BadRequest | Self::ValidationFailed => "The request is not valid.",
            Self::InvalidToken => "This link is invalid, used or expired: ask for a new one.",
            Self::Unauthorized => "Authentication required: log in first.",
            Self::Forbidden => "This request is not allowed.",
            Self::NotFound => "Not found.",
            Self::MethodNotAllowed => "This method is not allowed on this path.",
            Self::RequestTimeout => "The request body did not arrive in time.",
            Self::Conflict => "This conflicts with existing data.",
            Self::PayloadTooLarge => "The request body is too large.",
            Self::UnsupportedMediaType => {
                "Send the body as JSON, with Content-Type: application/json."
            }
            Self::RateLimited => "Too many requests: try again shortly.",
            Self::Internal => "Internal server error.",
            Self::BotUnavailable => "The bot is unavailable, try again shortly.",
            Self::Unavailable => "The service is temporarily unavailable, try again shortly.",
        }
    }

    /// The kind an error status stands for, for errors raised outside the API's code.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::BAD_GATEWAY => Self::BotUnavailable,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_client_error() => Self::BadRequest,
            _ => Self::Internal,
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(
    as = Error,
    examples(json!({"error": "Conversation not found.", "code": "not_found"}))
)]
pub struct ErrorBody<'a> {
    /// A sentence a UI can show.
    pub error: &'a str,
    /// What went wrong, for programs: stable, snake_case (`ErrorKind::code`).
    #[schema(schema_with = error_codes)]
    pub code: &'static str,
}

/// The schema of `code`: one of the codes of [`ErrorKind::ALL`].
fn error_codes() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorKind::ALL.map(ErrorKind::code)))
}

/// An error response. Internal causes go to the log, never to the client.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: Cow<'static, str>,
    cause: Option<BoxError>,
    /// Seconds the client should wait before trying again, sent as `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    /// 429 `rate_limited`: try again in `seconds`, as the message and `Retry-After`
    /// say.
    pub fn rate_limited(seconds: u64) -> Self {
        Self::new(
            ErrorKind::RateLimited,
            format!("Too many requests: try again in {seconds} s."),
        )
        .retry_after(seconds)
    }

    /// The same error, telling the client to try again in `seconds` (`Retry-After`).
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..self
        }
    }

    /// An error of `kind` with its default message.
    pub fn of_kind(kind: ErrorKind) -> Self {
        Self::new(kind, kind.default_message())
    }

    /// An error of `kind` whose cause is logged.
    pub fn caused_by(kind: ErrorKind, cause: impl Into<BoxError>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::of_kind(kind)
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The sentence shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            log_cause(self.kind, cause.as_ref());
        }
        let mut response = json_error(self.kind, &self.message);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// The response for an error of `kind` saying `message`.
pub(crate) fn json_error(kind: ErrorKind, message: &str) -> HttpResponse {
    HttpResponse::build(kind.status()).json(ErrorBody {
        error: message,
        code: kind.code(),
    })
}

/// Logs `cause` with its whole chain of sources.
pub(crate) fn log_cause(kind: ErrorKind, cause: &dyn std::error::Error) {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(next) = source {
        chain.push_str(": ");
        chain.push_str(&next.to_string());
        source = next.source();
    }
    if kind.status().is_server_error() {
        tracing::error!(code = kind.code(), error = %chain, "request failed");
    } else {
        tracing::debug!(code = kind.code(), error = %chain, "request refused");
    }
}

impl From<chatbot_domain::Error> for ApiError {
    fn from(error: chatbot_domain::Error) -> Self {
        use chatbot_domain::Error as E;
        match error {
            E::Validation(invalid) => Self::new(ErrorKind::ValidationFailed, sentence(&invalid)),
            E::UsernameTaken => Self::new(ErrorKind::Conflict, "That username is already taken."),
            E::EmailTaken => Self::new(
                ErrorKind::Conflict,
                "That email address belongs to another account.",
            ),
            E::WrongPassword => Self::new(ErrorKind::ValidationFailed, "The password is wrong."),
            E::InvalidToken => Self::of_kind(ErrorKind::InvalidToken),
            E::NoEmail => Self::new(
                ErrorKind::ValidationFailed,
                "Add an email address to your profile first.",
            ),
            E::EmailAlreadyVerified => Self::new(
                ErrorKind::ValidationFailed,
                "Your email address is already verified.",
            ),
            E::SessionNotFound => Self::new(ErrorKind::NotFound, "Session not found."),
            E::AccountGone => Self::new(
                ErrorKind::Unauthorized,
                "This account no longer exists: log in again.",
            ),
            E::InvalidCredentials => {
                Self::new(ErrorKind::Unauthorized, "Invalid username or password.")
            }
            E::ConversationNotFound => Self::new(ErrorKind::NotFound, "Conversation not found."),
            E::MessageNotFound => Self::new(ErrorKind::NotFound, "Message not found."),
            E::ReplyInProgress => Self::new(
                ErrorKind::Conflict,
                "A reply is still being written in this conversation: wait for it or stop it.",
            ),
            E::TooManyConnections { most } => Self::new(
                ErrorKind::RateLimited,
                format!(
                    "Too many connections: at most {most} per user. Close another tab or device first."
                ),
            ),
            E::Busy => Self::new(
                ErrorKind::Unavailable,
                "Too many logins are being checked right now: try again in a moment.",
            )
            .retry_after(1),
            E::LoginsSuspended { retry_after } => {
                // Rounded up: a client that waits as told is not refused again.
                let seconds = u64::try_from(retry_after.as_millis().div_ceil(1000))
                    .unwrap_or(u64::MAX)
                    .max(1);
                Self::new(
                    ErrorKind::RateLimited,
                    format!("Too many failed logins for this username: try again in {seconds} s."),
                )
                .retry_after(seconds)
            }
            E::TooManyConversations { most } => Self::new(
                ErrorKind::Conflict,
                format!(
                    "You have {most} conversations, the most allowed: delete some to start another."
                ),
            ),
            E::ShuttingDown => Self::new(
                ErrorKind::Unavailable,
                "The service is restarting, try again shortly.",
            ),
            E::StorageUnavailable(cause) => Self::caused_by(ErrorKind::Unavailable, cause),
            E::BotUnavailable(cause) => Self::caused_by(ErrorKind::BotUnavailable, cause),
            other => Self::caused_by(ErrorKind::Internal, other),
        }
    }
}

impl From<chatbot_domain::ValidationError> for ApiError {
    fn from(invalid: chatbot_domain::ValidationError) -> Self {
        chatbot_domain::Error::from(invalid).into()
    }
}

/// `text` with a capital first letter and a full stop.
pub(crate) fn sentence(text: &impl fmt::Display) -> String {
    let text = text.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once() {
        // Exhaustive: a new kind fails to compile here until it has a place in `ALL`.
        fn place(kind: ErrorKind) -> usize {
            match kind {
                ErrorKind::BadRequest => 0,
                ErrorKind::ValidationFailed => 1,
                ErrorKind::InvalidToken => 2,
                ErrorKind::Unauthorized => 3,
                ErrorKind::Forbidden => 4,
                ErrorKind::NotFound => 5,
                ErrorKind::MethodNotAllowed => 6,
                ErrorKind::RequestTimeout => 7,
                ErrorKind::Conflict => 8,
                ErrorKind::PayloadTooLarge => 9,
                ErrorKind::UnsupportedMediaType => 10,
                ErrorKind::RateLimited => 11,
                ErrorKind::Internal => 12,
                ErrorKind::BotUnavailable => 13,
                ErrorKind::Unavailable => 14,
            }
        }
        for (index, kind) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(place(kind), index, "{kind:?}");
        }
    }
}
