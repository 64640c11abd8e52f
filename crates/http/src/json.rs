//! The JSON request body extractor, with SPEC-shaped errors for every way a body
//! can be wrong.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{ApiError, ErrorKind, sentence};

/// A JSON request body decoded into `T`.
///
/// An empty body reads as `{}`, so a request without a body gets "field is required"
/// errors, and a body whose fields are all optional may be left out. A body that is
/// present must be sent as JSON (`application/json` or `…+json`): 415 otherwise.
/// Bodies over the configured limit get 413; malformed JSON and missing or mistyped
/// fields get 400 with a sentence naming the field.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_json = is_json(request);
        let body = Bytes::from_request(request, payload);
        Box::pin(async move {
            let body = body.await.map_err(|error| {
                if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::of_kind(ErrorKind::PayloadTooLarge)
                } else {
                    ApiError::new(ErrorKind::BadRequest, "The request body could not be read.")
                }
            })?;
            if body.is_empty() {
                return decode(b"{}").map(Json);
            }
            if !declared_json {
                return Err(ApiError::of_kind(ErrorKind::UnsupportedMediaType));
            }
            decode(&body).map(Json)
        })
    }
}

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would also read a struct from an array of its fields; only objects count.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => ApiError::new(
                ErrorKind::BadRequest,
                "The request body must be a JSON object.",
            ),
            Err(error) => syntax_error(&error),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| field_error(&error.path().to_string(), error.inner()))?;
    deserializer.end().map_err(|error| syntax_error(&error))?;
    Ok(value)
}

fn field_error(path: &str, error: &serde_json::Error) -> ApiError {
    if !error.is_data() {
        return syntax_error(error);
    }
    let detail = without_position(error);
    if let Some(field) = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return ApiError::new(
            ErrorKind::BadRequest,
            format!("Field `{field}` is required."),
        );
    }
    if path == "." {
        return ApiError::new(
            ErrorKind::BadRequest,
            "The request body must be a JSON object.",
        );
    }
    ApiError::new(
        ErrorKind::BadRequest,
        format!("Field `{path}` is invalid: {detail}."),
    )
}

fn syntax_error(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorKind::BadRequest,
        format!("Malformed JSON: {}", sentence(&error)),
    )
}

/// serde_json's message without its " at line 1 column 7" suffix.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    }
}
