//! Conversations and their messages, each on behalf of the logged-in user.

use actix_web::{HttpResponse, web};
use chatbot_domain::{ConversationId, ConversationName, MessageText};

use crate::dto::{
    ConversationOut, ConversationWithMessagesOut, MessageBody, MessageOut, NewConversationBody,
    RenameBody,
};
use crate::error::ApiError;
use crate::json::Json;
use crate::session::CurrentUser;
use crate::{Adapters, AppState};

pub(super) async fn list<A: Adapters>(
    state: web::Data<AppState<A>>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let conversations = state.chat.conversations(user).await?;
    let body: Vec<ConversationWithMessagesOut<'_>> = conversations.iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(body))
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
