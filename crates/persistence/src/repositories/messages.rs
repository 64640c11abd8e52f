use async_trait::async_trait;
use chatbot_domain::ports::MessageRepository;
use chatbot_domain::{
    AppendedMessage, ConversationId, ConversationName, Message, MessageCursor, NewMessage,
    StorageError, UserId, Window,
};
use diesel::prelude::*;

use super::conversations::owned;
use super::{columns_of, limit_of};
use crate::Database;
use crate::database::corrupt;
use crate::rows::{MessageRow, NewMessageRow, to_column};
use crate::schema::{conversations, messages};

#[async_trait]
impl MessageRepository for Database {
    async fn append_message(
        &self,
        owner: UserId,
        conversation: ConversationId,
        message: NewMessage,
    ) -> Result<Option<AppendedMessage>, StorageError> {
        let at = to_column(message.created_at);
        let row = NewMessageRow {
            conversation_id: conversation.get(),
            sender: message.sender.as_str(),
            text: message.text,
            status: message.status.as_str(),
            created_at: at,
        };
        let appended = self
            .write(move |connection| {
                connection.transaction(|connection| {
                    // The write that checks ownership comes first; see the module docs.
                    let Some(name) = diesel::update(owned(owner, conversation))
                        .set(conversations::updated_at.eq(at))
                        .returning(conversations::name)
                        .get_result::<String>(connection)
                        .optional()?
                    else {
                        return Ok(None);
                    };
                    diesel::insert_into(messages::table)
                        .values(&row)
                        .returning(columns_of!(MessageRow))
                        .get_result::<MessageRow>(connection)
                        .map(|row| Some((row, name)))
                })
            })
            .await?;
        appended
            .map(|(row, name)| {
                Ok(AppendedMessage {
                    message: row.into_message()?,
                    conversation_name: ConversationName::parse(&name).map_err(corrupt)?,
                })
            })
            .transpose()
    }

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
}
