use std::collections::HashMap;

use async_trait::async_trait;
use chatbot_domain::ports::ConversationRepository;
use chatbot_domain::{
    Conversation, ConversationCursor, ConversationId, ConversationName, ConversationWithMessages,
    NewConversation, Revision, StorageError, Timestamp, UserId, Window,
};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{columns_of, limit_of, lock_user, read_one_snapshot};
use crate::Database;
use crate::rows::{ConversationRow, MessageRow, NewConversationRow, to_column};
use crate::schema::{conversations, messages, revisions};

#[async_trait]
impl ConversationRepository for Database {
    async fn revision(&self, owner: UserId) -> Result<Revision, StorageError> {
        // One statement, so one snapshot: every counter as of one moment, added up
        // here (SQL's SUM of BIGINT is NUMERIC on PostgreSQL). A user that does not
        // exist (deleted meanwhile) has no counters, so nothing, as a new user has
        // nothing at the first revision.
        let counters = self
            .run_brief(move |connection| {
                revisions::table
                    .filter(revisions::user_id.eq(owner.get()))
                    .select(revisions::changes)
                    .load::<i64>(connection)
            })
            .await?;
        Ok(Revision(
            counters.iter().fold(0, |sum, &n| sum.saturating_add(n)),
        ))
    }

    async fn insert_conversation(
        &self,
        conversation: NewConversation,
        at_most: u32,
    ) -> Result<Option<Conversation>, StorageError> {
        let row = NewConversationRow {
            user_id: conversation.owner.get(),
            name: conversation.name.as_str().to_owned(),
            created_at: to_column(conversation.created_at),
            updated_at: to_column(conversation.created_at),
        };
        self.write(move |connection| {
            connection.transaction(|connection| {
                lock_user(connection, row.user_id)?;
                let owned: i64 = conversations::table
                    .filter(conversations::user_id.eq(row.user_id))
                    .count()
                    .get_result(connection)?;
                if owned >= i64::from(at_most) {
                    return Ok(None);
                }
                diesel::insert_into(conversations::table)
                    .values(&row)
                    .returning(columns_of!(ConversationRow))
                    .get_result::<ConversationRow>(connection)
                    .map(Some)
            })
        })
        .await?
        .map(ConversationRow::into_conversation)
        .transpose()
    }

    async fn list_conversations(
        &self,
        owner: UserId,
        window: Window<ConversationCursor>,
    ) -> Result<Vec<Conversation>, StorageError> {
        let rows = self
            .run(move |connection| {
                activity_window(owner, window)
                    .select(columns_of!(ConversationRow))
                    .load::<ConversationRow>(connection)
            })
            .await?;
        rows.into_iter()
            .map(ConversationRow::into_conversation)
            .collect()
    }

    /// Two queries, whatever the number of conversations: the window, then the
    /// messages of every conversation in it, matched up here. (One join would repeat
    /// and re-decode each conversation's columns on every one of its messages.)
    async fn list_conversations_with_messages(
        &self,
        owner: UserId,
        window: Window<ConversationCursor>,
    ) -> Result<Vec<ConversationWithMessages>, StorageError> {
        let (conversations, messages) = self
            .run(move |connection| {
                read_one_snapshot(connection, |connection| {
                    let conversations = activity_window(owner, window)
                        .select(columns_of!(ConversationRow))
                        .load::<ConversationRow>(connection)?;
                    let in_window = activity_window(owner, window).select(conversations::id);
                    let messages = messages::table
                        .filter(messages::conversation_id.eq_any(in_window))
                        .order((messages::conversation_id, messages::id))
                        .select(columns_of!(MessageRow))
                        .load::<MessageRow>(connection)?;
                    Ok((conversations, messages))
                })
            })
            .await?;

        let position: HashMap<i64, usize> = conversations
            .iter()
            .enumerate()
            .map(|(position, row)| (row.id, position))
            .collect();
        let mut listed = conversations
            .into_iter()
            .map(|row| {
                Ok(ConversationWithMessages {
                    conversation: row.into_conversation()?,
                    messages: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        for row in messages {
            if let Some(&at) = position.get(&row.conversation_id) {
                listed[at].messages.push(row.into_message()?);
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
            .write(move |connection| {
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

    async fn title_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        title: ConversationName,
    ) -> Result<Option<Conversation>, StorageError> {
        // The condition on the name is in the UPDATE itself, so a rename racing the
        // title wins or loses as a whole; RETURNING hands back the row as titled (the
        // event that tells the owner's devices) without a read that could see a later
        // rename.
        let titled = self
            .write(move |connection| {
                diesel::update(
                    owned(owner, id)
                        .filter(conversations::name.eq(ConversationName::default().as_str())),
                )
                .set(conversations::name.eq(title.as_str()))
                .returning(columns_of!(ConversationRow))
                .get_result::<ConversationRow>(connection)
                .optional()
            })
            .await?;
        titled.map(ConversationRow::into_conversation).transpose()
    }

    async fn delete_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<bool, StorageError> {
        // Messages go with it: ON DELETE CASCADE.
        let deleted = self
            .write(move |connection| diesel::delete(owned(owner, id)).execute(connection))
            .await?;
        Ok(deleted > 0)
    }
}

/// `owner`'s conversations in `window`, most recently active first, ties broken by id.
/// The index `conversations_user_activity` holds them in this order, so a page deep in
/// a long history costs what the first page costs.
///
/// The whole list is the window from the end of time with no limit: one query shape
/// for every window, which diesel's multi-backend connection needs for a subquery.
fn activity_window(owner: UserId, window: Window<ConversationCursor>) -> activity_window_query {
    let (at, id) = window
        .before
        .map_or((Timestamp::max(), i64::MAX), |cursor| {
            (cursor.updated_at, cursor.id.get())
        });
    activity_window_query(owner.get(), to_column(at), id, limit_of(window.limit))
}

#[diesel::dsl::auto_type]
fn activity_window_query(owner: i64, at: NaiveDateTime, id: i64, limit: i64) -> _ {
    conversations::table
        .filter(conversations::user_id.eq(owner))
        // The first condition is a range on the index, where the scan starts; the
        // second only sorts out conversations active in the same millisecond.
        .filter(conversations::updated_at.le(at))
        .filter(
            conversations::updated_at
                .lt(at)
                .or(conversations::id.lt(id)),
        )
        .order((conversations::updated_at.desc(), conversations::id.desc()))
        .limit(limit)
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
