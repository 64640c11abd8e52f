use async_trait::async_trait;
use chatbot_domain::ports::ConversationRepository;
use chatbot_domain::{
    Conversation, ConversationId, ConversationName, ConversationWithMessages, NewConversation,
    StorageError, Timestamp, UserId,
};
use diesel::prelude::*;

use super::columns_of;
use crate::Database;
use crate::rows::{ConversationRow, MessageRow, NewConversationRow, to_column};
use crate::schema::{conversations, messages};

#[async_trait]
impl ConversationRepository for Database {
    async fn insert_conversation(
        &self,
        conversation: NewConversation,
    ) -> Result<Conversation, StorageError> {
        let row = NewConversationRow {
            user_id: conversation.owner.get(),
            name: conversation.name.as_str().to_owned(),
            created_at: to_column(conversation.created_at),
            updated_at: to_column(conversation.created_at),
        };
        self.run(move |connection| {
            diesel::insert_into(conversations::table)
                .values(&row)
                .returning(columns_of!(ConversationRow))
                .get_result::<ConversationRow>(connection)
        })
        .await?
        .into_conversation()
    }

    /// One query, whatever the number of conversations: a left join of conversations
    /// and their messages in display order, grouped here.
    async fn list_conversations_with_messages(
        &self,
        owner: UserId,
    ) -> Result<Vec<ConversationWithMessages>, StorageError> {
        let rows = self
            .run(move |connection| {
                conversations::table
                    .left_join(messages::table)
                    .filter(conversations::user_id.eq(owner.get()))
                    .order((
                        conversations::updated_at.desc(),
                        conversations::id.desc(),
                        messages::created_at.asc(),
                        messages::id.asc(),
                    ))
                    .select((
                        columns_of!(ConversationRow),
                        columns_of!(Option<MessageRow>),
                    ))
                    .load::<(ConversationRow, Option<MessageRow>)>(connection)
            })
            .await?;

        let mut listed: Vec<ConversationWithMessages> = Vec::new();
        for (conversation, message) in rows {
            let is_next = listed
                .last()
                .is_none_or(|last| last.conversation.id.get() != conversation.id);
            if is_next {
                listed.push(ConversationWithMessages {
                    conversation: conversation.into_conversation()?,
                    messages: Vec::new(),
                });
            }
            if let (Some(message), Some(current)) = (message, listed.last_mut()) {
                current.messages.push(message.into_message()?);
            }
        }
        Ok(listed)
    }

    async fn rename_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        name: ConversationName,
        at: Timestamp,
    ) -> Result<Option<Conversation>, StorageError> {
        let renamed = self
            .run(move |connection| {
                diesel::update(owned(owner, id))
                    .set((
                        conversations::name.eq(name.as_str()),
                        conversations::updated_at.eq(to_column(at)),
                    ))
                    .returning(columns_of!(ConversationRow))
                    .get_result::<ConversationRow>(connection)
                    .optional()
            })
            .await?;
        renamed.map(ConversationRow::into_conversation).transpose()
    }

    async fn delete_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<bool, StorageError> {
        // Messages go with it: ON DELETE CASCADE.
        let deleted = self
            .run(move |connection| diesel::delete(owned(owner, id)).execute(connection))
            .await?;
        Ok(deleted > 0)
    }
}

/// Conversation `id`, if `owner` owns it.
pub(super) fn owned(
    owner: UserId,
    id: ConversationId,
) -> diesel::dsl::Filter<
    diesel::dsl::Filter<conversations::table, diesel::dsl::Eq<conversations::id, i64>>,
    diesel::dsl::Eq<conversations::user_id, i64>,
> {
    conversations::table
        .filter(conversations::id.eq(id.get()))
        .filter(conversations::user_id.eq(owner.get()))
}
