//! Table rows, and their translation to and from domain values.

use chatbot_domain::{
    Conversation, ConversationId, ConversationName, Credentials, Message, MessageId, PasswordHash,
    SessionKey, SessionRecord, StorageError, Timestamp, User, UserId, Username,
};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::database::corrupt;
use crate::schema::{conversations, messages, sessions, users};
use crate::stored_time::StoredTime;

/// Timestamps are stored as UTC without a zone, the portable `TIMESTAMP` type.
pub(crate) fn to_column(timestamp: Timestamp) -> NaiveDateTime {
    timestamp.as_datetime().naive_utc()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    id: i64,
    username: String,
    created_at: StoredTime,
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User, StorageError> {
        Ok(User {
            id: UserId::new(self.id),
            username: Username::parse(&self.username).map_err(corrupt)?,
            created_at: self.created_at.0,
        })
    }

    pub(crate) fn into_credentials(
        self,
        password_hash: String,
    ) -> Result<Credentials, StorageError> {
        Ok(Credentials {
            user: self.into_user()?,
            password_hash: PasswordHash::new(password_hash),
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow {
    pub(crate) username: String,
    pub(crate) password_hash: String,
    pub(crate) created_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub(crate) struct ConversationRow {
    pub(crate) id: i64,
    user_id: i64,
    name: String,
    created_at: StoredTime,
    updated_at: StoredTime,
}

impl ConversationRow {
    pub(crate) fn into_conversation(self) -> Result<Conversation, StorageError> {
        Ok(Conversation {
            id: ConversationId::new(self.id),
            owner: UserId::new(self.user_id),
            name: ConversationName::parse(&self.name).map_err(corrupt)?,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = conversations)]
pub(crate) struct NewConversationRow {
    pub(crate) user_id: i64,
    pub(crate) name: String,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = messages)]
pub(crate) struct MessageRow {
    id: i64,
    pub(crate) conversation_id: i64,
    sender: String,
    text: String,
    status: String,
    created_at: StoredTime,
}

impl MessageRow {
    pub(crate) fn into_message(self) -> Result<Message, StorageError> {
        Ok(Message {
            id: MessageId::new(self.id),
            conversation_id: ConversationId::new(self.conversation_id),
            sender: self.sender.parse().map_err(corrupt)?,
            text: self.text,
            status: self.status.parse().map_err(corrupt)?,
            created_at: self.created_at.0,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = messages)]
pub(crate) struct NewMessageRow {
    pub(crate) conversation_id: i64,
    pub(crate) sender: &'static str,
    pub(crate) text: String,
    pub(crate) status: &'static str,
    pub(crate) created_at: NaiveDateTime,
}

/// A bot's reply as it starts: streaming, no text and no delta yet, heard of when it
/// is created.
#[derive(Insertable)]
#[diesel(table_name = messages)]
pub(crate) struct NewReplyRow {
    pub(crate) conversation_id: i64,
    pub(crate) sender: &'static str,
    pub(crate) text: &'static str,
    pub(crate) status: &'static str,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) reply_ends: &'static str,
    pub(crate) heard_at: NaiveDateTime,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub(crate) session_key: String,
    pub(crate) user_id: Option<i64>,
    pub(crate) state: String,
    pub(crate) expires_at: NaiveDateTime,
}

impl From<SessionRecord> for SessionRow {
    fn from(record: SessionRecord) -> Self {
        Self {
            session_key: record.key.as_str().to_owned(),
            user_id: record.user.map(UserId::get),
            state: record.state,
            expires_at: to_column(record.expires_at),
        }
    }
}

impl From<SessionRow> for SessionRecord {
    fn from(row: SessionRow) -> Self {
        Self {
            key: SessionKey::new(row.session_key),
            user: row.user_id.map(UserId::new),
            state: row.state,
            expires_at: Timestamp::from_datetime(row.expires_at.and_utc()),
        }
    }
}
