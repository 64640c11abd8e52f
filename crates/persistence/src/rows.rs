//! Table rows, and their translation to and from domain values.

use chatbot_domain::{
    AccountToken, Conversation, ConversationId, ConversationName, Credentials, DisplayName, Email,
    Message, MessageId, NewAccountToken, NewSession, NewUser, PasswordHash, Profile, ProfileChange,
    SessionId, SessionRecord, StorageError, Timestamp, TokenPurpose, User, UserId, Username,
};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::database::corrupt;
use crate::schema::{account_tokens, conversations, messages, sessions, users};
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
}

/// A user with the hash their password is checked against.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct CredentialsRow {
    #[diesel(embed)]
    user: UserRow,
    password_hash: String,
}

impl CredentialsRow {
    pub(crate) fn into_credentials(self) -> Result<Credentials, StorageError> {
        Ok(Credentials {
            user: self.user.into_user()?,
            password_hash: PasswordHash::new(self.password_hash),
        })
    }
}

/// A user's profile: the user with their shown name and address.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct ProfileRow {
    #[diesel(embed)]
    user: UserRow,
    display_name: String,
    email: Option<String>,
    email_verified: bool,
}

impl ProfileRow {
    pub(crate) fn into_profile(self) -> Result<Profile, StorageError> {
        Ok(Profile {
            user: self.user.into_user()?,
            display_name: DisplayName::parse(&self.display_name).map_err(corrupt)?,
            email: self
                .email
                .map(|email| Email::parse(&email).map_err(corrupt))
                .transpose()?,
            email_verified: self.email_verified,
        })
    }
}

/// A new user; their email is unverified by the column's default.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow {
    username: String,
    username_normalized: String,
    display_name: String,
    email: Option<String>,
    email_normalized: Option<String>,
    password_hash: String,
    created_at: NaiveDateTime,
}

impl From<NewUser> for NewUserRow {
    fn from(user: NewUser) -> Self {
        let (email, email_normalized) = email_columns(user.email.as_ref());
        Self {
            username: user.username.as_str().to_owned(),
            username_normalized: user.username.normalized(),
            display_name: user.display_name.as_str().to_owned(),
            email,
            email_normalized,
            password_hash: user.password_hash.as_str().to_owned(),
            created_at: to_column(user.created_at),
        }
    }
}

/// The columns a [`ProfileChange`] writes; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = users)]
pub(crate) struct ProfileChangeRow {
    display_name: Option<String>,
    email: Option<Option<String>>,
    email_normalized: Option<Option<String>>,
    email_verified: Option<bool>,
}

impl ProfileChangeRow {
    /// The columns `change` writes; `None` when it writes none (diesel cannot send an
    /// `UPDATE` without a `SET`).
    pub(crate) fn of(change: ProfileChange) -> Option<Self> {
        let (email, email_normalized, email_verified) = match change.email {
            Some(email) => {
                let (email, normalized) = email_columns(email.as_ref());
                // A new address, or none, is not verified.
                (Some(email), Some(normalized), Some(false))
            }
            None => (None, None, None),
        };
        let display_name = change.display_name.map(|name| name.as_str().to_owned());
        (display_name.is_some() || email.is_some()).then_some(Self {
            display_name,
            email,
            email_normalized,
            email_verified,
        })
    }
}

/// An address as stored: as typed, and [normalized](Email::normalized), which the
/// unique index and the lookups compare.
fn email_columns(email: Option<&Email>) -> (Option<String>, Option<String>) {
    (
        email.map(|email| email.as_str().to_owned()),
        email.map(Email::normalized),
    )
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

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct NewSessionRow {
    key_digest: String,
    user_id: Option<i64>,
    state: String,
    user_agent: Option<String>,
    created_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

impl From<NewSession> for NewSessionRow {
    fn from(session: NewSession) -> Self {
        Self {
            key_digest: session.digest.as_str().to_owned(),
            user_id: session.user.map(UserId::get),
            state: session.state,
            user_agent: session.user_agent,
            created_at: to_column(session.created_at),
            // A new session is in use as it starts.
            last_seen_at: to_column(session.created_at),
            expires_at: to_column(session.expires_at),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    id: i64,
    user_id: Option<i64>,
    state: String,
    user_agent: Option<String>,
    created_at: StoredTime,
    last_seen_at: StoredTime,
    expires_at: StoredTime,
}

impl From<SessionRow> for SessionRecord {
    fn from(row: SessionRow) -> Self {
        Self {
            id: SessionId::new(row.id),
            user: row.user_id.map(UserId::new),
            state: row.state,
            user_agent: row.user_agent,
            created_at: row.created_at.0,
            last_seen_at: row.last_seen_at.0,
            expires_at: row.expires_at.0,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = account_tokens)]
pub(crate) struct NewTokenRow {
    digest: String,
    pub(crate) user_id: i64,
    pub(crate) purpose: &'static str,
    email: String,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

impl From<NewAccountToken> for NewTokenRow {
    fn from(token: NewAccountToken) -> Self {
        Self {
            digest: token.digest.as_str().to_owned(),
            user_id: token.user.get(),
            purpose: token.purpose.as_str(),
            email: token.email.as_str().to_owned(),
            created_at: to_column(token.created_at),
            expires_at: to_column(token.expires_at),
        }
    }
}

/// A stored token, as its holder takes it back.
#[derive(Queryable, Selectable)]
#[diesel(table_name = account_tokens)]
pub(crate) struct TokenRow {
    user_id: i64,
    purpose: String,
    email: String,
    expires_at: StoredTime,
}

impl TokenRow {
    pub(crate) fn into_token(self) -> Result<AccountToken, StorageError> {
        let purpose = TokenPurpose::from_stored(&self.purpose)
            .ok_or_else(|| corrupt(format!("unknown token purpose {:?}", self.purpose)))?;
        Ok(AccountToken {
            user: UserId::new(self.user_id),
            purpose,
            email: Email::parse(&self.email).map_err(corrupt)?,
            expires_at: self.expires_at.0,
        })
    }
}
