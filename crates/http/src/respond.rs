//! The last line of the error contract: whatever fails, and wherever (a handler, an
//! extractor, CORS, the session middleware, the router), the client gets
//! `{"error": ..., "code": ...}` with a fitting status.

use actix_cors::CorsError;
use actix_session::storage::{LoadError, SaveError, UpdateError};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

use crate::error::{ApiError, ErrorKind, json_error, log_cause};

/// Middleware making every error response a JSON error body.
pub(crate) async fn json_errors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static, BoxBody>>, Error> {
    match next.call(request).await {
        Ok(response) if !needs_json_body(&response) => Ok(response.map_into_left_body()),
        Ok(response) => {
            let reclassified = response.response().error().and_then(reclassify);
            let kind = reclassified.unwrap_or_else(|| ErrorKind::from_status(response.status()));
            let (request, old) = response.into_parts();
            let mut new = json_error(kind, kind.default_message());
            if reclassified.is_none() {
                // A status without a kind of its own (408, 431, ...) stays what it was.
                *new.status_mut() = old.status();
            }
            // Keep what the failed response carried besides its body (CORS, Allow, ...).
            for (name, value) in old.headers() {
                if name != CONTENT_TYPE && !new.headers().contains_key(name) {
                    new.headers_mut().insert(name.clone(), value.clone());
                }
            }
            Ok(ServiceResponse::new(request, new).map_into_right_body())
        }
        Err(error) => {
            // An error from a middleware: swapped for one that renders as JSON (the
            // request is gone, so it cannot become a response here).
            let kind = reclassify(&error)
                .unwrap_or_else(|| ErrorKind::from_status(error.as_response_error().status_code()));
            if kind == ErrorKind::Internal || kind == ErrorKind::Unavailable {
                log_cause(kind, &ErrorChain(&error));
            }
            Err(ApiError::of_kind(kind).into())
        }
    }
}

/// An error status whose body is not JSON yet.
fn needs_json_body<B>(response: &ServiceResponse<B>) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && response.headers().get(CONTENT_TYPE)
            != Some(&HeaderValue::from_static("application/json"))
}

/// What an error raised by a middleware stands for, where its status says otherwise.
fn reclassify(error: &Error) -> Option<ErrorKind> {
    if error.as_error::<CorsError>().is_some() {
        // A preflight from an origin that is not on the allow-list.
        return Some(ErrorKind::Forbidden);
    }
    // The session middleware reports its store's failures as opaque 500s; the store is
    // the database, so they mean the database is unavailable.
    if error.as_error::<InternalError<LoadError>>().is_some()
        || error.as_error::<InternalError<SaveError>>().is_some()
        || error.as_error::<InternalError<UpdateError>>().is_some()
        || error.as_error::<InternalError<anyhow::Error>>().is_some()
    {
        return Some(ErrorKind::Unavailable);
    }
    None
}

/// Adapts actix's error for logging with its cause.
struct ErrorChain<'a>(&'a Error);

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The Debug form of actix's errors carries the underlying cause.
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for ErrorChain<'_> {}

/// 404 for any path the API does not have.
pub(crate) async fn not_found() -> HttpResponse {
    json_error(ErrorKind::NotFound, ErrorKind::NotFound.default_message())
}

/// 405 for a path the API has, with a method it does not take there; `Allow` lists the
/// methods it takes (RFC 9110 §15.5.6).
pub(crate) async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = json_error(
        ErrorKind::MethodNotAllowed,
        ErrorKind::MethodNotAllowed.default_message(),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
