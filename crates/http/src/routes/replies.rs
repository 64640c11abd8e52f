//! A bot's reply while it is written: following it again, and stopping it.

use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, web};
use chatbot_domain::{ConversationId, MessageId};

use crate::State;
use crate::dto::MessageOut;
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::session::CurrentUser;
use crate::sse;

/// The header an `EventSource` sends when it reconnects: the id of the last event it
/// got.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Follows a reply, from where the client left off, on any instance.
#[utoipa::path(
    get,
    path = "/api/conversations/{id}/messages/{message_id}/events",
    operation_id = "follow_reply",
    tag = "conversations",
    summary = "Follow a bot's reply as it is written (server-sent events)",
    description = "The events of `POST /api/conversations/{id}/messages` from `reply` on. \
        With `Last-Event-ID: n`: the `delta`s after delta `n`, then the live ones; without \
        it, `reply` and every delta so far. Then `done` (the stored reply) or `error`. For \
        a reply that is finished already, or a user's message: `done` (or `error` for a failed \
        reply) at once. \
        Works on any instance that shares the database; closing it never stops the reply.",
    params(
        ("id" = i64, Path, minimum = 1, description = "The conversation's id."),
        ("message_id" = i64, Path, minimum = 1, description = "The bot message's id."),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false,
            description = "The id of the last `delta` the client has."),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "The reply's events.", content_type = "text/event-stream",
            body = String),
        (status = 400, description = "`bad_request`: `Last-Event-ID` is not a delta id.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such message in a conversation of \
            yours.", body = ErrorBody),
    ),
)]
pub(super) async fn events(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(i64, i64)>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, reply) = path.into_inner();
    let after = last_event_id(&request)?;
    let feed = state
        .services
        .chat
        .follow_reply(user, ConversationId::new(id), MessageId::new(reply), after)
        .await?;
    Ok(sse::response(Vec::new(), feed, state.keep_alive))
}

/// Stops a reply, on any instance, keeping what it had written.
#[utoipa::path(
    post,
    path = "/api/conversations/{id}/messages/{message_id}/stop",
    operation_id = "stop_reply",
    tag = "conversations",
    summary = "Stop a bot's reply",
    description = "Cancels the model's request wherever the reply is being written and \
        stores the text so far with `status: \"interrupted\"`. A finished reply, or a user's \
        message, is returned as it is.",
    params(
        ("id" = i64, Path, minimum = 1, description = "The conversation's id."),
        ("message_id" = i64, Path, minimum = 1, description = "The bot message's id."),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "The reply as stored.", body = MessageOut),
        (status = 404, description = "`not_found`: no such message in a conversation of \
            yours.", body = ErrorBody),
    ),
)]
pub(super) async fn stop(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, reply) = path.into_inner();
    let message = state
        .services
        .chat
        .stop_reply(user, Some(ConversationId::new(id)), MessageId::new(reply))
        .await?;
    Ok(HttpResponse::Ok().json(MessageOut::from(&message)))
}

/// The delta after which to resume; `None` without the header.
fn last_event_id(request: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = request.headers().get(LAST_EVENT_ID) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::BadRequest,
                "Last-Event-ID must be the id of a delta event: a whole number.",
            )
        })
}
