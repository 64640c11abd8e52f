//! Conversations and their messages, each on behalf of the logged-in user.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chatbot_domain::{
    ConversationCursor, ConversationId, ConversationName, ConversationWithMessages, MessageCursor,
    MessageText, PageRequest, PageSize, Revision, UserId,
};
use serde::de::DeserializeOwned;

use crate::State;
use crate::dto::{
    ConversationListing, ConversationOut, ConversationPageOut, ConversationPageQuery,
    ConversationWithMessagesOut, MessageBody, MessageOut, MessagePageOut, MessagePageQuery,
    NewConversationBody, RenameBody,
};
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::json::Json;
use crate::revalidate::Version;
use crate::session::CurrentUser;
use crate::sse;

/// `If-None-Match`, as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "documents a header the handlers read from the request"
)]
struct IfNoneMatchHeader {
    /// The `ETag` of the response you have: 304 if it is still current.
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
}

/// The seed's whole list without a query; a page with `limit`, `before` or `include`.
#[utoipa::path(
    method(get, head),
    path = "/api/conversations",
    operation_id = "list_conversations",
    tag = "conversations",
    summary = "List your conversations",
    description = "Without a query (other parameters than these are ignored): the seed's list \
        of every conversation with every message, most recently active first (a new message \
        makes its conversation the most recent), messages oldest first.\n\n\
        With any of `limit`, `before` or `include`: one page, most recently active first, \
        and `next` to pass back as `before` for the following page (`null` on the last). \
        Paging costs the same however long the history is, and skips or repeats nothing \
        when conversations move meanwhile.",
    params(ConversationPageQuery, IfNoneMatchHeader),
    security(("session" = [])),
    responses(
        (status = 200, description = "The list, or a page of it.", body = ConversationListing,
            headers(("ETag" = String, description = "A strong tag of this response, the \
                same until you change anything; with `Cache-Control: private, no-cache`."))),
        (status = 304, description = "`If-None-Match` named the current `ETag` (or `*`): \
            what you have is current. No body.",
            headers(("ETag" = String, description = "The same tag."))),
        (status = 400, description = "`validation_failed`: `limit`, `before` or `include` is \
            not valid; the sentence names it. `bad_request`: the query string cannot be read.",
            body = ErrorBody),
    ),
)]
pub(super) async fn list(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ConversationPageQuery = parse_query(&request)?;
    // Bad input is a 400 whatever the client has cached: the query first.
    let paged = if query.limit.is_none() && query.before.is_none() && query.include.is_none() {
        None
    } else {
        let with_messages = match query.include.as_deref() {
            None => false,
            Some("messages") => true,
            Some(_) => {
                return Err(ApiError::new(
                    ErrorKind::ValidationFailed,
                    "include must be `messages`",
                ));
            }
        };
        let page = PageRequest {
            size: page_size(query.limit.as_deref())?,
            before: parse_before::<ConversationCursor>(query.before.as_deref())?,
        };
        Some((page, with_messages))
    };
    let revision = state.services.chat.revision(user).await?;
    let version = Version::of(&request, user, revision);
    if let Some(unchanged) = version.unchanged(&request) {
        return Ok(unchanged);
    }
    let Some((page, with_messages)) = paged else {
        return whole_list(&state, user, revision, &version).await;
    };
    let chat = &state.services.chat;
    let mut response = HttpResponse::Ok();
    version.headers(&mut response);
    Ok(if with_messages {
        let page = chat.conversation_page_with_messages(user, page).await?;
        response.json(ConversationPageOut::<ConversationWithMessagesOut<'_>>::new(
            &page,
        ))
    } else {
        let page = chat.conversation_page(user, page).await?;
        response.json(ConversationPageOut::<ConversationOut<'_>>::new(&page))
    })
}

/// The seed's list of every conversation with every message as of `revision` (or
/// later), rendered again only when the revision has moved since the last rendering.
async fn whole_list(
    state: &State,
    user: UserId,
    revision: Revision,
    version: &Version,
) -> Result<HttpResponse, ApiError> {
    let body = match state.lists.get(user, revision) {
        Some(body) => body,
        None => {
            let conversations = state.services.chat.conversations(user).await?;
            let listed: Vec<ConversationWithMessagesOut<'_>> =
                conversations.iter().map(Into::into).collect();
            // Sized up front: growing by doubling would hold two copies of a long
            // history's list at once, the peak of the process's memory.
            let mut buffer = Vec::with_capacity(estimated_json_len(&conversations));
            serde_json::to_writer(&mut buffer, &listed)
                .map_err(|error| ApiError::caused_by(ErrorKind::Internal, error))?;
            let body = Bytes::from(buffer);
            state.lists.put(user, revision, body.clone());
            body
        }
    };
    Ok(version
        .headers(&mut HttpResponse::Ok())
        .content_type(ContentType::json())
        .body(body))
}

/// About the length of the seed list's JSON: the texts plus each object's keys, ids
/// and timestamps (escapes make it longer, which the buffer then grows for).
fn estimated_json_len(conversations: &[ConversationWithMessages]) -> usize {
    conversations
        .iter()
        .map(|listed| {
            let texts: usize = listed.messages.iter().map(|m| m.text.len() + 100).sum();
            listed.conversation.name.as_str().len() + 130 + texts
        })
        .sum::<usize>()
        + 2
}

/// A page of a conversation's messages, the latest first unless `before` says where.
#[utoipa::path(
    method(get, head),
    path = "/api/conversations/{id}/messages",
    tag = "conversations",
    summary = "Page through a conversation's messages",
    description = "The first page holds the latest messages; `next` walks back through the \
        history, as a chat window scrolls up. Messages are oldest first within a page.",
    params(
        ("id" = i64, Path, minimum = 1, description = "The conversation's id."),
        MessagePageQuery,
        IfNoneMatchHeader,
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of messages.", body = MessagePageOut,
            headers(("ETag" = String, description = "A strong tag of this response, the \
                same until you change anything; with `Cache-Control: private, no-cache`."))),
        (status = 304, description = "`If-None-Match` named the current `ETag`: what you \
            have is current. No body. (`*` is no reason for a 304 here: the conversation \
            may not exist.)",
            headers(("ETag" = String, description = "The same tag."))),
        (status = 400, description = "`validation_failed`: `limit` or `before` is not valid; \
            the sentence names it. `bad_request`: the query string cannot be read.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of yours (also for \
            another user's, and for ids that are not positive integers).", body = ErrorBody),
    ),
)]
pub(super) async fn list_messages(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: MessagePageQuery = parse_query(&request)?;
    let page = PageRequest {
        size: page_size(query.limit.as_deref())?,
        before: parse_before::<MessageCursor>(query.before.as_deref())?,
    };
    let revision = state.services.chat.revision(user).await?;
    // The conversation may not exist (or be another user's): `*` cannot be answered
    // without reading it.
    let version = Version::of(&request, user, revision).perhaps_missing();
    if let Some(unchanged) = version.unchanged(&request) {
        return Ok(unchanged);
    }
    let id = ConversationId::new(id.into_inner());
    let page = state.services.chat.message_page(user, id, page).await?;
    Ok(version
        .headers(&mut HttpResponse::Ok())
        .json(MessagePageOut::from(&page)))
}

fn parse_query<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|error| {
            ApiError::new(
                ErrorKind::BadRequest,
                format!("The query string is not valid: {error}."),
            )
        })
}

fn page_size(raw: Option<&str>) -> Result<PageSize, ApiError> {
    Ok(raw.map(PageSize::parse).transpose()?.unwrap_or_default())
}

fn parse_before<C>(raw: Option<&str>) -> Result<Option<C>, ApiError>
where
    C: std::str::FromStr<Err = chatbot_domain::ValidationError>,
{
    Ok(raw.map(str::parse).transpose()?)
}

/// Starts a conversation.
#[utoipa::path(
    post,
    path = "/api/conversations",
    operation_id = "create_conversation",
    tag = "conversations",
    summary = "Start a conversation",
    request_body(
        content = Option<NewConversationBody>,
        description = "May be left out (an empty body), for a conversation called \
            \"New conversation\".",
    ),
    security(("session" = [])),
    responses(
        (status = 201, description = "The new conversation.", body = ConversationOut),
        (status = 400, description = "`validation_failed`: the name breaks a rule; the \
            sentence says which.", body = ErrorBody),
        (status = 409, description = "`conflict`: the user has as many conversations as \
            allowed (`limits.max_conversations_per_user`, 10,000 by default); deleting one \
            makes room.", body = ErrorBody),
    ),
)]
pub(super) async fn create(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    Json(body): Json<NewConversationBody>,
) -> Result<HttpResponse, ApiError> {
    let name = match body.name {
        Some(name) => ConversationName::parse(&name)?,
        None => ConversationName::default(),
    };
    let conversation = state.services.chat.create_conversation(user, name).await?;
    Ok(HttpResponse::Created().json(ConversationOut::from(&conversation)))
}

/// Renames a conversation.
#[utoipa::path(
    put,
    path = "/api/conversations/{id}",
    operation_id = "rename_conversation",
    tag = "conversations",
    summary = "Rename a conversation",
    params(("id" = i64, Path, minimum = 1, description = "The conversation's id.")),
    request_body = RenameBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "The renamed conversation.", body = ConversationOut),
        (status = 400, description = "`validation_failed`: the name breaks a rule; the \
            sentence says which.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of yours (also for \
            another user's, and for ids that are not positive integers).", body = ErrorBody),
    ),
)]
pub(super) async fn rename(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
    Json(body): Json<RenameBody>,
) -> Result<HttpResponse, ApiError> {
    let name = ConversationName::parse(&body.name)?;
    let id = ConversationId::new(id.into_inner());
    let conversation = state
        .services
        .chat
        .rename_conversation(user, id, name)
        .await?;
    Ok(HttpResponse::Ok().json(ConversationOut::from(&conversation)))
}

/// Deletes a conversation and its messages.
#[utoipa::path(
    delete,
    path = "/api/conversations/{id}",
    operation_id = "delete_conversation",
    tag = "conversations",
    summary = "Delete a conversation and its messages",
    params(("id" = i64, Path, minimum = 1, description = "The conversation's id.")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Deleted; no body."),
        (status = 404, description = "`not_found`: no such conversation of yours (also for \
            another user's, and for ids that are not positive integers).", body = ErrorBody),
    ),
)]
pub(super) async fn delete(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = ConversationId::new(id.into_inner());
    state.services.chat.delete_conversation(user, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Stores the user's message, asks the bot, stores its reply; streamed as server-sent
/// events when asked for.
#[utoipa::path(
    post,
    path = "/api/conversations/{id}/messages",
    tag = "conversations",
    summary = "Send a message and get the bot's reply",
    description = "Stores the message, then asks the bot and stores its reply; if the bot \
        fails, the user's message stays. Rate limited per user. One reply at a time per \
        conversation.\n\n\
        With `Accept: text/event-stream`, answers 200 with server-sent events as the reply \
        is written: `message` (the stored user message), `reply` (the bot message as \
        created: empty, `streaming`), `delta` events numbered by `id` from 1 \
        (`{\"message_id\", \"text\"}`), then `done` (the stored reply) or `error` \
        (`{\"error\", \"code\"}`; a reply with some text is stored `failed`), with \
        `: keep-alive` comments while nothing comes. The reply is written to its end even \
        if the client goes: follow it again with \
        `GET /api/conversations/{id}/messages/{message_id}/events`. Errors before the \
        stream starts are the JSON errors below.",
    params(("id" = i64, Path, minimum = 1, description = "The conversation's id.")),
    request_body = MessageBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "With `Accept: text/event-stream`: the events of the \
            exchange, as described above.", content_type = "text/event-stream", body = String),
        (status = 201, description = "The user's message and the bot's reply, in that order.",
            body = [MessageOut]),
        (status = 400, description = "`validation_failed`: the text breaks a rule; the \
            sentence says which.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of yours (also for \
            another user's, and for ids that are not positive integers).", body = ErrorBody),
        (status = 409, description = "`conflict`: a reply is still being written in this \
            conversation; nothing was stored.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many messages from this user.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 502, description = "`bot_unavailable`: the bot did not reply; the user's \
            message is stored.", body = ErrorBody),
    ),
)]
pub(super) async fn send_message(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
    request: HttpRequest,
    Json(body): Json<MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let text = MessageText::parse_with_limit(&body.text, state.max_message_chars)?;
    let id = ConversationId::new(id.into_inner());
    let chat = &state.services.chat;
    if sse::wants_events(&request) {
        let started = chat.start_reply(user, id, text).await?;
        let first = vec![sse::message_event(&started.user_message)];
        return Ok(sse::response(first, started.events, state.keep_alive));
    }
    let exchange = chat.send_message(user, id, text).await?;
    let body = [
        MessageOut::from(&exchange.user_message),
        MessageOut::from(&exchange.bot_message),
    ];
    Ok(HttpResponse::Created().json(body))
}
