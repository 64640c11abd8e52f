//! One log line per request, and the request id that ties it to the client's report
//! and to whatever else the request logged.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use chatbot_domain::UserId;
use tracing::Instrument;

/// The header a request id arrives in (from a proxy that made one) and leaves in.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; longer ones are replaced.
const MAX_ID_LEN: usize = 128;

/// The user a request acted as, once its session named one; for the request's log line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActingUser(pub(crate) UserId);

/// Middleware: takes the request's `X-Request-Id` or makes one, runs the request in a
/// span carrying it, echoes it in the response, and logs the outcome in one line:
/// method, path, route pattern, status, latency and user.
pub(crate) async fn log_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| usable_id(value.as_bytes()))
        .cloned()
        .unwrap_or_else(new_id);
    let method = request.method().clone();
    // Without the query, which may carry what should not be logged.
    let path = request.path().to_owned();
    let span = tracing::info_span!("request", id = %String::from_utf8_lossy(id.as_bytes()));
    let outcome = next.call(request).instrument(span.clone()).await;
    let log = |status: u16, route: Option<String>, user: Option<i64>| {
        span.in_scope(|| {
            tracing::info!(
                method = %method,
                path,
                route = route.as_deref().unwrap_or("(no route)"),
                status,
                // To the microsecond: what a clock read around a request can tell.
                latency_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0,
                user,
                "request"
            );
        });
    };
    match outcome {
        Ok(mut response) => {
            let request = response.request();
            let user = request
                .extensions()
                .get::<ActingUser>()
                .map(|user| user.0.get());
            log(response.status().as_u16(), request.match_pattern(), user);
            response.headers_mut().insert(REQUEST_ID.clone(), id);
            Ok(response)
        }
        // A middleware refused the request and took it along: the route and the user
        // are gone, the id still goes back with the error's response.
        Err(error) => {
            let mut response = error.error_response();
            log(response.status().as_u16(), None, None);
            response.headers_mut().insert(REQUEST_ID.clone(), id);
            Err(InternalError::from_response(error, response).into())
        }
    }
}

/// A client's id is kept when it is short and plain (letters, digits, `-_.:`), so
/// that it cannot forge log lines or smuggle markup.
fn usable_id(id: &[u8]) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 128 random bits in hex: unique across instances without coordination.
fn new_id() -> HeaderValue {
    let bits: u128 = rand::random();
    // Hex digits are always a valid header value.
    HeaderValue::from_str(&format!("{bits:032x}"))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_short_ids_are_kept_and_others_replaced() {
        assert!(usable_id(b"3f2c-9a:1_x.y"));
        assert!(usable_id(&[b'a'; MAX_ID_LEN]));
        assert!(!usable_id(b""));
        assert!(!usable_id(&[b'a'; MAX_ID_LEN + 1]));
        assert!(!usable_id(b"a b"));
        assert!(!usable_id(b"a\"}"));
    }

    #[test]
    fn new_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
    }
}
