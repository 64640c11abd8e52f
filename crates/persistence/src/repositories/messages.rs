use async_trait::async_trait;
use chatbot_domain::ports::MessageRepository;
use chatbot_domain::{ConversationId, Message, NewMessage, StorageError, UserId};
use diesel::prelude::*;

use super::columns_of;
use super::conversations::owned;
use crate::Database;
use crate::rows::{MessageRow, NewMessageRow, to_column};
use crate::schema::{conversations, messages};

#[async_trait]
impl MessageRepository for Database {
    async fn append_message(
        &self,
        owner: UserId,
        conversation: ConversationId,
        message: NewMessage,
    ) -> Result<Option<Message>, StorageError> {
        let at = to_column(message.created_at);
        let row = NewMessageRow {
            conversation_id: conversation.get(),
            sender: message.sender.as_str(),
            text: message.text,
            created_at: at,
        };
        let appended = self
            .run(move |connection| {
                connection.transaction(|connection| {
                    // The write that checks ownership comes first; see the module docs.
                    let touched = diesel::update(owned(owner, conversation))
                        .set(conversations::updated_at.eq(at))
                        .execute(connection)?;
                    if touched == 0 {
                        return Ok(None);
                    }
                    diesel::insert_into(messages::table)
                        .values(&row)
                        .returning(columns_of!(MessageRow))
                        .get_result::<MessageRow>(connection)
                        .map(Some)
                })
            })
            .await?;
        appended.map(MessageRow::into_message).transpose()
    }
}
