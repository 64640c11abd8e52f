use async_trait::async_trait;
use chatbot_domain::ports::MessageRepository;
use chatbot_domain::{
    BegunExchange, ConversationId, Message, MessageCursor, MessageId, MessageStatus, NewMessage,
    ReplySnapshot, ReplyText, StorageError, Timestamp, UserId, Window,
};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::conversations::owned;
use super::{columns_of, limit_of, replies};
use crate::Database;
use crate::connection::AnyConnection;
use crate::rows::MessageRow;
use crate::schema::{conversations, messages};

#[async_trait]
impl MessageRepository for Database {
    /// One indexed query, walking the conversation's messages backwards from
    /// `before`, for a page that holds messages; an empty page costs a second query,
    /// which tells an empty conversation from a missing or foreign one.
    async fn list_messages(
        &self,
        owner: UserId,
        conversation: ConversationId,
        window: Window<MessageCursor>,
    ) -> Result<Option<Vec<Message>>, StorageError> {
        let before = window.before.map_or(i64::MAX, |cursor| cursor.0.get());
        let rows = self
            .run(move |connection| {
                // A scalar subquery, NULL for a conversation `owner` does not own, so
                // that the planner scans the index in order (a join would sort).
                let owned_id = owned(owner, conversation)
                    .select(conversations::id)
                    .single_value();
                let page = messages::table
                    .filter(messages::conversation_id.nullable().eq(owned_id))
                    .filter(messages::id.lt(before))
                    .order(messages::id.desc())
                    .limit(limit_of(window.limit))
                    .select(columns_of!(MessageRow))
                    .load::<MessageRow>(connection)?;
                if page.is_empty() {
                    let found = diesel::select(diesel::dsl::exists(owned(owner, conversation)))
                        .get_result::<bool>(connection)?;
                    return Ok(found.then_some(page));
                }
                Ok(Some(page))
            })
            .await?;
        let Some(rows) = rows else {
            return Ok(None);
        };
        let mut messages = rows
            .into_iter()
            .map(MessageRow::into_message)
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(Some(messages))
    }

    async fn begin_exchange(
        &self,
        owner: UserId,
        conversation: ConversationId,
        message: NewMessage,
    ) -> Result<Option<BegunExchange>, StorageError> {
        replies::begin_exchange(self, owner, conversation, message).await
    }

    async fn checkpoint_reply(
        &self,
        reply: MessageId,
        text: &ReplyText,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        replies::checkpoint_reply(self, reply, text, at).await
    }

    async fn finish_reply(
        &self,
        reply: MessageId,
        text: String,
        status: MessageStatus,
    ) -> Result<Option<Message>, StorageError> {
        replies::finish_reply(self, reply, text, status).await
    }

    async fn discard_reply(&self, reply: MessageId) -> Result<(), StorageError> {
        replies::discard_reply(self, reply).await
    }

    async fn find_reply(
        &self,
        owner: UserId,
        conversation: ConversationId,
        reply: MessageId,
    ) -> Result<Option<ReplySnapshot>, StorageError> {
        replies::find_reply(self, owner, conversation, reply).await
    }

    async fn interrupt_reply(
        &self,
        owner: UserId,
        conversation: ConversationId,
        reply: MessageId,
    ) -> Result<Option<Message>, StorageError> {
        replies::interrupt_reply(self, owner, conversation, reply).await
    }

    /// One query through the message's primary key and the conversation's.
    async fn reply_conversation(
        &self,
        owner: UserId,
        reply: MessageId,
    ) -> Result<Option<ConversationId>, StorageError> {
        let found = self
            .run(move |connection| {
                messages::table
                    .inner_join(conversations::table)
                    .filter(messages::id.eq(reply.get()))
                    .filter(conversations::user_id.eq(owner.get()))
                    .select(messages::conversation_id)
                    .get_result::<i64>(connection)
                    .optional()
            })
            .await?;
        Ok(found.map(ConversationId::new))
    }

    async fn interrupt_stale_replies(
        &self,
        silent_since: Timestamp,
    ) -> Result<Vec<(UserId, Message)>, StorageError> {
        replies::interrupt_stale_replies(self, silent_since).await
    }
}

/// Marks `owner`'s conversation `conversation` active at `at`, returning its name;
/// `None` when `owner` has no such conversation. It checks ownership with a write, so
/// it comes first in a transaction that appends (see the module docs); on PostgreSQL it
/// also locks the conversation's row, which serialises appends to one conversation.
pub(super) fn mark_active(
    connection: &mut AnyConnection,
    owner: UserId,
    conversation: ConversationId,
    at: NaiveDateTime,
) -> QueryResult<Option<String>> {
    diesel::update(owned(owner, conversation))
        .set(conversations::updated_at.eq(at))
        .returning(conversations::name)
        .get_result::<String>(connection)
        .optional()
}
