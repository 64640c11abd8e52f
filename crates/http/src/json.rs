//! The JSON request body extractor, with SPEC-shaped errors for every way a body
//! can be wrong.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{ApiError, ErrorKind, sentence};

/// How long a request body may take to arrive once the handler asks for it (app data;
/// [`BodyTimeout::DEFAULT`] when there is none). actix bounds the time to the end of
/// the request's head, never the body's: without this a client that sends a head with
/// `Content-Length` and never the body would hold its connection for ever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub(crate) Duration);

impl BodyTimeout {
    const DEFAULT: Duration = Duration::from_secs(15);
}

/// A JSON request body decoded into `T`.
///
/// An empty body reads as `{}`, so a request without a body gets "field is required"
/// errors, and a body whose fields are all optional may be left out. A body that is
/// present must be sent as JSON (`application/json` or `…+json`): 415 otherwise.
/// Bodies over the configured limit get 413; bodies that do not arrive within the
/// [`BodyTimeout`] get 408; malformed JSON and missing or mistyped fields get 400 with
/// a sentence naming the field.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_json = is_json(request);
        let deadline = request
            .app_data::<BodyTimeout>()
            .map_or(BodyTimeout::DEFAULT, |timeout| timeout.0);
        let body = Bytes::from_request(request, payload);
        Box::pin(async move {
            let body = actix_web::rt::time::timeout(deadline, body)
                .await
                .map_err(|_| ApiError::of_kind(ErrorKind::RequestTimeout))?
                .map_err(|error| {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;
    use crate::dto::{CredentialsBody, MessageBody, NewConversationBody, RenameBody};

    /// Any JSON, with objects that often use the API's own field names.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                Just("username".to_owned()),
                Just("password".to_owned()),
                Just("name".to_owned()),
                Just("text".to_owned()),
                any::<String>(),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((key, inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// Decoding `body` into every request type gives a value or a 400, never a panic.
    fn decodes_or_refuses(body: &[u8]) -> Result<(), TestCaseError> {
        let outcomes = [
            decode::<CredentialsBody>(body).map(drop),
            decode::<NewConversationBody>(body).map(drop),
            decode::<RenameBody>(body).map(drop),
            decode::<MessageBody>(body).map(drop),
        ];
        for outcome in outcomes {
            if let Err(error) = outcome {
                prop_assert_eq!(error.kind(), ErrorKind::BadRequest);
                prop_assert!(!error.to_string().is_empty());
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            decodes_or_refuses(&body)?;
        }

        #[test]
        fn arbitrary_json(value in json()) {
            decodes_or_refuses(value.to_string().as_bytes())?;
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let missing = decode::<CredentialsBody>(br#"{"username": "a"}"#).unwrap_err();
        assert_eq!(missing.to_string(), "Field `password` is required.");
        let mistyped = decode::<MessageBody>(br#"{"text": 5}"#).unwrap_err();
        assert!(
            mistyped.to_string().starts_with("Field `text` is invalid"),
            "{mistyped}"
        );
        let array = decode::<CredentialsBody>(br#"["alice", "password1"]"#).unwrap_err();
        assert_eq!(array.to_string(), "The request body must be a JSON object.");
    }
}
