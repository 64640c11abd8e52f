//! Conversations and their messages, each on behalf of the logged-in user.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chatbot_domain::{
    ConversationCursor, ConversationId, ConversationName, ConversationWithMessages, MessageCursor,
    MessageText, PageRequest, PageSize, UserId,
};
use serde::de::DeserializeOwned;

use crate::dto::{
    ConversationOut, ConversationPageOut, ConversationPageQuery, ConversationWithMessagesOut,
    MessageBody, MessageOut, MessagePageOut, MessagePageQuery, NewConversationBody, RenameBody,
};
use crate::error::{ApiError, ErrorKind};
use crate::json::Json;
use crate::session::CurrentUser;
use crate::{Adapters, AppState};

/// The seed's whole list without a query; a page with `limit`, `before` or `include`.
pub(super) async fn list<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ConversationPageQuery = parse_query(&request)?;
    if query.limit.is_none() && query.before.is_none() && query.include.is_none() {
        return whole_list(&state, user).await;
    }
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
    let chat = &state.chat;
    Ok(if with_messages {
        let page = chat.conversation_page_with_messages(user, page).await?;
        HttpResponse::Ok().json(ConversationPageOut::<ConversationWithMessagesOut<'_>>::new(
            &page,
        ))
    } else {
        let page = chat.conversation_page(user, page).await?;
        HttpResponse::Ok().json(ConversationPageOut::<ConversationOut<'_>>::new(&page))
    })
}

/// The seed's list of every conversation with every message, rendered again only
/// when the user's revision has moved since the last rendering.
async fn whole_list<A: Adapters>(
    state: &AppState<A>,
    user: UserId,
) -> Result<HttpResponse, ApiError> {
    let revision = state.chat.revision(user).await?;
    let body = match state.lists.get(user, revision) {
        Some(body) => body,
        None => {
            let conversations = state.chat.conversations(user).await?;
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
    Ok(HttpResponse::Ok()
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
pub(super) async fn list_messages<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: MessagePageQuery = parse_query(&request)?;
    let page = PageRequest {
        size: page_size(query.limit.as_deref())?,
        before: parse_before::<MessageCursor>(query.before.as_deref())?,
    };
    let id = ConversationId::new(id.into_inner());
    let page = state.chat.message_page(user, id, page).await?;
    Ok(HttpResponse::Ok().json(MessagePageOut::from(&page)))
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

pub(super) async fn create<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
    Json(body): Json<NewConversationBody>,
) -> Result<HttpResponse, ApiError> {
    let name = match body.name {
        Some(name) => ConversationName::parse(&name)?,
        None => ConversationName::default(),
    };
    let conversation = state.chat.create_conversation(user, name).await?;
    Ok(HttpResponse::Created().json(ConversationOut::from(&conversation)))
}

pub(super) async fn rename<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
    Json(body): Json<RenameBody>,
) -> Result<HttpResponse, ApiError> {
    let name = ConversationName::parse(&body.name)?;
    let id = ConversationId::new(id.into_inner());
    let conversation = state.chat.rename_conversation(user, id, name).await?;
    Ok(HttpResponse::Ok().json(ConversationOut::from(&conversation)))
}

pub(super) async fn delete<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = ConversationId::new(id.into_inner());
    state.chat.delete_conversation(user, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn send_message<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
    id: web::Path<i64>,
    Json(body): Json<MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let text = MessageText::parse_with_limit(&body.text, state.max_message_chars)?;
    let id = ConversationId::new(id.into_inner());
    let exchange = state.chat.send_message(user, id, text).await?;
    let body = [
        MessageOut::from(&exchange.user_message),
        MessageOut::from(&exchange.bot_message),
    ];
    Ok(HttpResponse::Created().json(body))
}
