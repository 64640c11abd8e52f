//! The API's OpenAPI 3.1 document, generated from the code: the handlers'
//! `#[utoipa::path]` attributes give the operations, the DTOs' `ToSchema` derives give
//! the schemas, and the modifiers below add what middleware does to every route (the
//! session cookie, the CSRF check, the JSON body rules, database failures). The input
//! rules in it (lengths, patterns) are built from the domain's constants and predicates,
//! never written by hand.
//!
//! The server serves it at `GET /api/openapi.json`, and as a page at `GET /api/docs`,
//! as configured: the session cookie's name and the longest message are the running ones.

use chatbot_domain::MessageText;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi as _, ToSchema};

use crate::dto::{self, DeltaOut, MessageBody};
use crate::error::{ErrorBody, ErrorKind};
use crate::routes::{
    accounts, auth, conversations, docs, health, index, realtime, replies, web_client,
};

/// The document's title, which the page at `/api/docs` is titled after too.
pub(crate) const TITLE: &str = "Chatbot API";

/// The name of the security scheme of the session cookie.
const SESSION: &str = "session";

/// The session cookie's name unless `session.cookie_name` says otherwise.
const DEFAULT_COOKIE_NAME: &str = "session";

const DESCRIPTION: &str = "\
The chatbot's HTTP API: accounts with server-side sessions, conversations, and messages \
that get a bot reply.

- **Bodies** are JSON (UTF-8), sent with `Content-Type: application/json`; a request body \
  may be left out where every field is optional.
- **Sessions**: `POST /api/login` sets the session cookie; browsers send it back \
  (`credentials: include`). A session ends at logout, or after 30 minutes without use \
  (configurable).
- **Errors** are always `{\"error\": \"<a sentence a UI can show>\", \"code\": \"<snake_case>\"}` \
  (schema `Error`), whatever fails, the router included: an unknown path is a 404 \
  `not_found`, and a known path with a method it does not take is a 405 \
  `method_not_allowed` (neither is repeated under each operation).
- **CSRF**: a POST, PUT, PATCH or DELETE whose `Origin` header is neither the server's own \
  origin nor an allowed one is refused with 403 `forbidden` before anything runs.
- **Timestamps** are RFC 3339 in UTC with milliseconds: `2026-11-25T06:07:14.123Z`. Ids \
  are positive integers.
- **HEAD** is answered wherever listed, as GET without the body.";

/// The document, as derived from the code.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = TITLE, description = DESCRIPTION),
    paths(
        auth::test,
        auth::sign_up,
        auth::log_in,
        auth::log_out,
        conversations::list,
        conversations::create,
        conversations::rename,
        conversations::delete,
        conversations::list_messages,
        conversations::send_message,
        replies::events,
        replies::stop,
        realtime::open,
        accounts::profile,
        accounts::update_profile,
        accounts::delete_account,
        accounts::change_password,
        accounts::sessions,
        accounts::end_other_sessions,
        accounts::end_session,
        accounts::send_verification,
        accounts::verify_email,
        accounts::forgot_password,
        accounts::reset_password,
        web_client::page,
        web_client::login,
        web_client::conversation,
        web_client::settings,
        web_client::verify,
        web_client::reset,
        web_client::asset,
        index::api,
        health::health,
        health::ready,
        docs::json,
        docs::page,
    ),
    components(schemas(ErrorBody, DeltaOut)),
    modifiers(
        &SessionCookie,
        &CursorPattern,
        &OptionalBodies,
        &EventStreams,
        &CommonErrors,
        &HeadWithoutBodies,
        &UniqueOperationIds,
    ),
    tags(
        (name = "auth", description = "Signing up, logging in and out."),
        (name = "account", description = "Your profile, password and sessions; leaving; the \
            mailed links that verify an address or reset a password."),
        (name = "conversations", description = "Your conversations and their messages."),
        (name = "realtime", description = "Every change to your data as it happens, over a WebSocket."),
        (name = "operations", description = "The index, probes, and this document."),
        (name = "web client", description = "The chat client in the browser: its page at \
            each of its routes, and its scripts and styles."),
    ),
)]
struct ApiDoc;

/// The API's OpenAPI 3.1 document, with the session cookie under its default name,
/// `session`.
///
/// The server serves the same document at `GET /api/openapi.json`, with the cookie
/// named as configured (`session.cookie_name`).
pub fn openapi() -> OpenApi {
    ApiDoc::openapi()
}

/// The document as the server runs: with the session cookie named `cookie_name`
/// (`session.cookie_name`), and message texts of at most `max_message_chars` characters
/// (`limits.max_message_chars`).
pub(crate) fn configured(cookie_name: &str, max_message_chars: usize) -> OpenApi {
    let mut document = openapi();
    let Some(components) = document.components.as_mut() else {
        return document;
    };
    if cookie_name != DEFAULT_COOKIE_NAME {
        components.add_security_scheme(SESSION, session_scheme(cookie_name));
    }
    if max_message_chars != MessageText::DEFAULT_MAX_CHARS {
        if let Some(RefOr::T(Schema::Object(body))) =
            components.schemas.get_mut(MessageBody::name().as_ref())
        {
            MessageBody::with_max_chars(body, max_message_chars);
        }
    }
    document
}

fn session_scheme(cookie_name: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        cookie_name,
        "The session cookie `POST /api/login` sets: an opaque, signed session key.",
    )))
}

/// Adds the session cookie as a security scheme.
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, document: &mut OpenApi) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(SESSION, session_scheme(DEFAULT_COOKIE_NAME));
    }
}

/// Gives the conversation cursor, the `before` of `GET /api/conversations` (the one
/// `before` that is a string), the pattern the domain reads it by.
struct CursorPattern;

impl Modify for CursorPattern {
    fn modify(&self, document: &mut OpenApi) {
        for item in document.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() else {
                        continue;
                    };
                    if parameter.name == "before"
                        && parameter.parameter_in == ParameterIn::Query
                        && schema.schema_type == SchemaType::new(Type::String)
                    {
                        schema.pattern = Some(dto::conversation_cursor_pattern());
                    }
                }
            }
        }
    }
}

/// An event stream's schema says what each event is, as an event stream parser reads
/// it (OpenAPI 3.2's convention for `text/event-stream`): its name, its `id` if any,
/// and its `data`, a line of JSON text whose shape the operation's description gives.
struct EventStreams;

impl Modify for EventStreams {
    fn modify(&self, document: &mut OpenApi) {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let event: Schema = ObjectBuilder::new()
            .property("event", text().description(Some("The event's name.")))
            .property("id", text().description(Some("A delta's number, from 1.")))
            .property(
                "data",
                text().description(Some("The event's JSON, as text.")),
            )
            .required("event")
            .required("data")
            .description(Some("One server-sent event."))
            .into();
        for item in document.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if let Some(stream) = response.content.get_mut(crate::sse::EVENT_STREAM) {
                        stream.schema = Some(RefOr::T(event.clone()));
                    }
                }
            }
        }
    }
}

/// A handler taking an `Option<Body>` takes a request without a body (the JSON extractor
/// reads an empty body as `{}`), not a JSON `null`, which is refused like any body that
/// is not an object: the body is optional and, when sent, an object.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, document: &mut OpenApi) {
        let null = serde_json::json!({"type": "null"});
        let is_null =
            |schema: &RefOr<Schema>| serde_json::to_value(schema).is_ok_and(|s| s == null);
        for item in document.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                let Some(body) = operation.request_body.as_mut() else {
                    continue;
                };
                if body.required == Some(Required::True) {
                    continue;
                }
                for content in body.content.values_mut() {
                    // `Option<T>` is `oneOf: [{"type": "null"}, T]`.
                    let object = match content.schema.as_ref() {
                        Some(RefOr::T(Schema::OneOf(one_of)))
                            if one_of.items.len() == 2 && one_of.items.iter().any(is_null) =>
                        {
                            one_of.items.iter().find(|item| !is_null(item)).cloned()
                        }
                        _ => None,
                    };
                    if let Some(object) = object {
                        content.schema = Some(object);
                    }
                }
                body.required = Some(Required::False);
            }
        }
    }
}

/// Adds to each operation the errors that the middleware and extractors it goes through
/// answer with, so that no handler has to repeat them: the JSON body extractor (400,
/// 408, 413, 415), the logged-in user extractor (401), the per-user limit on writes
/// (429), the CSRF check on writes (403), and
/// failures of the database, which every request with a session cookie reads (503),
/// and of the code (500). An error an operation already documents keeps its words; a
/// 400 gets the body rules added.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, document: &mut OpenApi) {
        for item in document.paths.paths.values_mut() {
            for (method, operation) in operations_mut(item) {
                let writes = matches!(method, "post" | "put" | "patch" | "delete");
                if operation.request_body.is_some() {
                    add_bad_body(operation);
                    add_error(
                        operation,
                        ErrorKind::RequestTimeout,
                        "the body did not arrive whole within the server's limit (15 s by \
                         default) after the request's headers; the connection is closed.",
                    );
                    add_error(
                        operation,
                        ErrorKind::PayloadTooLarge,
                        "the body is over the server's limit (64 KiB by default).",
                    );
                    add_error(
                        operation,
                        ErrorKind::UnsupportedMediaType,
                        "the body is not sent as JSON (`Content-Type: application/json`).",
                    );
                }
                if requires_login(operation) {
                    add_error(
                        operation,
                        ErrorKind::Unauthorized,
                        "no valid session: log in first (the session may have expired).",
                    );
                    if writes {
                        add_error(
                            operation,
                            ErrorKind::RateLimited,
                            "too many changes by this user (`rate_limit.writes_per_minute`); \
                             `Retry-After` says how many seconds to wait.",
                        );
                    }
                }
                if writes {
                    add_error(
                        operation,
                        ErrorKind::Forbidden,
                        "the request comes from a page on an origin that may not change data \
                         (its `Origin` header is neither the server's own nor allowed).",
                    );
                }
                add_error(
                    operation,
                    ErrorKind::Internal,
                    "a bug; the details are in the server's log only.",
                );
                add_error(
                    operation,
                    ErrorKind::Unavailable,
                    "the database cannot be reached (sessions live there too), or, where a \
                     password is checked or set, too many are being hashed at once \
                     (`Retry-After` then says when to try again); try again shortly.",
                );
            }
        }
    }
}

/// Whether `operation` needs the session cookie: it names a security requirement, and
/// none of its alternatives is the empty one (which makes the session optional).
fn requires_login(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|alternatives| {
        !alternatives.is_empty() && !alternatives.contains(&SecurityRequirement::default())
    })
}

fn add_bad_body(operation: &mut Operation) {
    const RULES: &str = "`bad_request`: the body is not a JSON object, or a field is \
                         missing or of the wrong type; the sentence names the field.";
    match operation.responses.responses.get_mut("400") {
        Some(RefOr::T(response)) => {
            response.description = format!("{} {RULES}", response.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            operation.responses.responses.insert(
                "400".to_owned(),
                error_response(ErrorKind::BadRequest, RULES),
            );
        }
    }
}

fn add_error(operation: &mut Operation, kind: ErrorKind, when: &str) {
    operation
        .responses
        .responses
        .entry(kind.status().as_u16().to_string())
        .or_insert_with(|| error_response(kind, &format!("`{}`: {when}", kind.code())));
}

/// An error response of `kind`: the `Error` schema, with an example of the kind.
fn error_response(kind: ErrorKind, description: &str) -> RefOr<Response> {
    let example = serde_json::json!({
        "error": kind.default_message(),
        "code": kind.code(),
    });
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .example(Some(example))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build()
        .into()
}

/// HEAD operations are their GET twins (`method(get, head)` on one handler); their
/// answers carry no body.
struct HeadWithoutBodies;

impl Modify for HeadWithoutBodies {
    fn modify(&self, document: &mut OpenApi) {
        for item in document.paths.paths.values_mut() {
            if let Some(head) = item.head.as_mut() {
                for response in head.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.content.clear();
                    }
                }
                head.summary = head.summary.take().map(|s| format!("{s} (headers only)"));
            }
        }
    }
}

/// Gives every operation its own id: where one handler serves several methods, the
/// first keeps the handler's id and the others get `_<method>` appended.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, document: &mut OpenApi) {
        let mut seen = std::collections::HashSet::new();
        for item in document.paths.paths.values_mut() {
            for (method, operation) in operations_mut(item) {
                if let Some(id) = operation.operation_id.as_mut() {
                    if !seen.insert(id.clone()) {
                        id.push('_');
                        id.push_str(method);
                        seen.insert(id.clone());
                    }
                }
            }
        }
    }
}

/// The operations of `item`, with their methods, in the order OpenAPI lists them.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("options", item.options.as_mut()),
        ("head", item.head.as_mut()),
        ("patch", item.patch.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

#[cfg(test)]
mod tests {
    use chatbot_domain::{ConversationName, PageSize, Password, Username};
    use serde_json::{Value, json};

    use super::*;

    fn document() -> Value {
        serde_json::to_value(openapi()).unwrap()
    }

    #[test]
    fn page_limits_are_the_domain_s() {
        let document = document();
        for path in ["/api/conversations", "/api/conversations/{id}/messages"] {
            let parameters = document["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap();
            let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
            assert_eq!(limit["in"], "query");
            assert_eq!(limit["schema"]["minimum"], 1, "{path}");
            assert_eq!(limit["schema"]["maximum"], PageSize::MAX, "{path}");
            assert_eq!(
                limit["schema"]["default"],
                PageSize::DEFAULT.get(),
                "{path}"
            );
        }
    }

    #[test]
    fn input_rules_are_the_domain_s() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        let username = &schemas["NewAccount"]["properties"]["username"];
        assert_eq!(username["minLength"], Username::MIN_CHARS);
        assert_eq!(username["maxLength"], Username::MAX_CHARS);
        let counted = format!("]{{{},{}}}$", Username::MIN_CHARS, Username::MAX_CHARS);
        assert!(username["pattern"].as_str().unwrap().ends_with(&counted));
        let password = &schemas["NewAccount"]["properties"]["password"];
        assert_eq!(password["minLength"], Password::MIN_CHARS);
        assert_eq!(password["maxLength"], Password::MAX_BYTES);
        let text = &schemas["NewMessage"]["properties"]["text"];
        assert_eq!(
            text["anyOf"][0]["maxLength"],
            MessageText::DEFAULT_MAX_CHARS
        );
        let created = &schemas["NewConversation"]["properties"]["name"];
        let renamed = &schemas["RenameConversation"]["properties"]["name"];
        assert_eq!(created["pattern"], renamed["pattern"]);
        assert_eq!(created["type"], json!(["string", "null"]));
        assert_eq!(renamed["type"], "string");
        let between = format!("{{0,{}}}", ConversationName::MAX_CHARS - 2);
        assert!(renamed["pattern"].as_str().unwrap().contains(&between));
        let parameters = document["paths"]["/api/conversations"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let before = parameters.iter().find(|p| p["name"] == "before").unwrap();
        assert_eq!(
            before["schema"]["pattern"],
            dto::conversation_cursor_pattern()
        );
        assert!(before["description"].is_string(), "{before}");
        // `schema_with` drops doc comments: each schema writes its own description.
        for described in [username, password, text, created, renamed] {
            let description = described["description"].as_str().unwrap();
            assert!(!description.is_empty(), "{described}");
        }
    }

    #[test]
    fn the_message_limit_is_the_configured_one() {
        let default = document();
        let text = "/components/schemas/NewMessage/properties/text";
        let limited = serde_json::to_value(configured(DEFAULT_COOKIE_NAME, 50)).unwrap();
        assert_eq!(limited.pointer(text).unwrap()["anyOf"][0]["maxLength"], 50);
        let description = limited.pointer(text).unwrap()["description"].as_str();
        assert!(
            description.unwrap().contains(" 1 to 50 characters "),
            "{description:?}"
        );
        // Nothing else differs.
        let mut restored = limited.clone();
        *restored.pointer_mut(text).unwrap() = default.pointer(text).unwrap().clone();
        assert_eq!(restored, default);
        let unchanged = configured(DEFAULT_COOKIE_NAME, MessageText::DEFAULT_MAX_CHARS);
        assert_eq!(serde_json::to_value(unchanged).unwrap(), default);
    }

    #[test]
    fn operation_ids_are_unique() {
        let document = document();
        let mut ids = Vec::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
    }

    #[test]
    fn head_answers_have_no_bodies() {
        let document = document();
        let head = &document["paths"]["/api/test"]["head"];
        assert_eq!(head["operationId"], "test_head");
        for response in head["responses"].as_object().unwrap().values() {
            assert!(response.get("content").is_none(), "{response}");
        }
    }

    #[test]
    fn the_cookie_is_named_as_configured() {
        let scheme = |document: OpenApi| {
            serde_json::to_value(document).unwrap()["components"]["securitySchemes"][SESSION]
                .clone()
        };
        let default = scheme(openapi());
        assert_eq!(default["type"], "apiKey");
        assert_eq!(default["in"], "cookie");
        assert_eq!(default["name"], "session");
        assert_eq!(scheme(configured("sid", 50))["name"], json!("sid"));
    }

    #[test]
    fn error_codes_are_every_kind_s() {
        let document = document();
        let codes = &document["components"]["schemas"]["Error"]["properties"]["code"]["enum"];
        let expected: Vec<&str> = ErrorKind::ALL.iter().map(|kind| kind.code()).collect();
        assert_eq!(codes, &json!(expected));
    }
}
