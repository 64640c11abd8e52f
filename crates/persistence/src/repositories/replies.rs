//! Bot replies that stream into their row: begun with the user's message,
//! checkpointed while the bot writes, then finished, discarded or interrupted.
//!
//! While a reply streams, its row holds the text so far, where each delta of that text
//! ends (`reply_ends`) and when its writer was last heard of (`heard_at`), so that any
//! instance sharing the database can follow it, resume it after a delta, and tell
//! when its writer died. Whatever ends it clears both. The database itself keeps one
//! streaming reply per conversation (a partial unique index), whichever instance
//! writes.
//!
//! The domain's [`MessageRepository`](chatbot_domain::ports::MessageRepository) on
//! [`Database`] forwards here: one trait implementation cannot be split between
//! modules.

use std::collections::HashMap;

use chatbot_domain::{
    BegunExchange, ConversationId, ConversationName, Message, MessageId, MessageStatus, NewMessage,
    ReplySnapshot, ReplyText, Sender, StorageError, Timestamp, UserId,
};
use chrono::NaiveDateTime;
use diesel::dsl::{exists, sql};
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::columns_of;
use super::conversations::owned;
use super::messages::mark_active;
use crate::Database;
use crate::connection::AnyConnection;
use crate::database::corrupt;
use crate::rows::{MessageRow, NewMessageRow, NewReplyRow, to_column};
use crate::schema::{conversations, messages};

/// Stores the user's message and the empty streaming reply after it, in one
/// transaction. A reply already streaming in the conversation makes the reply's
/// insert a unique violation, which rolls back the user's message with it.
pub(super) async fn begin_exchange(
    db: &Database,
    owner: UserId,
    conversation: ConversationId,
    message: NewMessage,
) -> Result<Option<BegunExchange>, StorageError> {
    let at = to_column(message.created_at);
    let said = NewMessageRow {
        conversation_id: conversation.get(),
        sender: message.sender.as_str(),
        text: message.text,
        status: message.status.as_str(),
        created_at: at,
    };
    let reply = NewReplyRow {
        conversation_id: conversation.get(),
        sender: Sender::Bot.as_str(),
        text: "",
        status: MessageStatus::Streaming.as_str(),
        created_at: at,
        reply_ends: "",
        heard_at: at,
    };
    let begun = db
        .write(move |connection| {
            connection.transaction(|connection| {
                let Some(name) = mark_active(connection, owner, conversation, at)? else {
                    return Ok(None);
                };
                let said = diesel::insert_into(messages::table)
                    .values(&said)
                    .returning(columns_of!(MessageRow))
                    .get_result::<MessageRow>(connection)?;
                let reply = diesel::insert_into(messages::table)
                    .values(&reply)
                    .returning(columns_of!(MessageRow))
                    .get_result::<MessageRow>(connection)?;
                Ok(Some((said, reply, name)))
            })
        })
        .await?;
    begun
        .map(|(said, reply, name)| {
            Ok(BegunExchange {
                user_message: said.into_message()?,
                reply: reply.into_message()?,
                conversation_name: ConversationName::parse(&name).map_err(corrupt)?,
            })
        })
        .transpose()
}

pub(super) async fn checkpoint_reply(
    db: &Database,
    reply: MessageId,
    text: &ReplyText,
    at: Timestamp,
) -> Result<bool, StorageError> {
    let ends = join_ends(text.ends());
    let text = text.as_str().to_owned();
    let at = to_column(at);
    let changed = on_streaming_reply(db, reply, move |connection| {
        diesel::update(messages::table.find(reply.get()).filter(streaming()))
            .set((
                messages::text.eq(text),
                messages::reply_ends.eq(Some(ends)),
                messages::heard_at.eq(Some(at)),
            ))
            .execute(connection)
    })
    .await?;
    Ok(changed == 1)
}

pub(super) async fn finish_reply(
    db: &Database,
    reply: MessageId,
    text: String,
    status: MessageStatus,
) -> Result<Option<Message>, StorageError> {
    let finished = on_streaming_reply(db, reply, move |connection| {
        diesel::update(messages::table.find(reply.get()).filter(streaming()))
            .set((messages::text.eq(text), ended(status)))
            .returning(columns_of!(MessageRow))
            .get_result::<MessageRow>(connection)
            .optional()
    })
    .await?;
    finished.map(MessageRow::into_message).transpose()
}

pub(super) async fn discard_reply(db: &Database, reply: MessageId) -> Result<(), StorageError> {
    on_streaming_reply(db, reply, move |connection| {
        diesel::delete(messages::table.find(reply.get()).filter(streaming())).execute(connection)
    })
    .await?;
    Ok(())
}

/// Runs `work` on the reply `reply` in a write transaction that holds the reply's
/// conversation first (see [`lock_conversation`]).
async fn on_streaming_reply<T: Send + 'static>(
    db: &Database,
    reply: MessageId,
    work: impl FnOnce(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
) -> Result<T, StorageError> {
    db.write(move |connection| {
        connection.transaction(|connection| {
            lock_conversation_of(connection, reply)?;
            work(connection)
        })
    })
    .await
}

pub(super) async fn find_reply(
    db: &Database,
    owner: UserId,
    conversation: ConversationId,
    reply: MessageId,
) -> Result<Option<ReplySnapshot>, StorageError> {
    let found = db
        .run(move |connection| owned_reply(connection, owner, conversation, reply))
        .await?;
    found.map(|(row, ends)| snapshot(row, ends)).transpose()
}

/// The update comes first, so that on SQLite the transaction holds the write lock
/// from its start (see the module docs of `repositories`); the read after it sees the
/// message as that update left it, interrupted or finished before.
pub(super) async fn interrupt_reply(
    db: &Database,
    owner: UserId,
    conversation: ConversationId,
    reply: MessageId,
) -> Result<Option<Message>, StorageError> {
    let stored = db
        .write(move |connection| {
            connection.transaction(|connection| {
                lock_conversation(connection, conversation.get())?;
                diesel::update(
                    messages::table
                        .find(reply.get())
                        .filter(messages::conversation_id.eq(conversation.get()))
                        .filter(streaming())
                        .filter(exists(owned(owner, conversation))),
                )
                .set(ended(MessageStatus::Interrupted))
                .execute(connection)?;
                owned_reply(connection, owner, conversation, reply)
            })
        })
        .await?;
    stored.map(|(row, _)| row.into_message()).transpose()
}

/// Served by the partial index on `heard_at` of streaming replies; their
/// conversations are locked first, in order, like every other write to a reply. The
/// owners are read after the update, in the same transaction: on SQLite a writing
/// transaction starts with its write (see the module docs of `repositories`), and on
/// PostgreSQL the locked conversations cannot change hands or go meanwhile.
pub(super) async fn interrupt_stale_replies(
    db: &Database,
    silent_since: Timestamp,
) -> Result<Vec<(UserId, Message)>, StorageError> {
    let silent_since = to_column(silent_since);
    let stale = move || {
        messages::table
            .filter(streaming())
            .filter(messages::heard_at.lt(silent_since))
    };
    let (replies, owners) = db
        .write(move |connection| {
            connection.transaction(|connection| {
                if let AnyConnection::Postgresql(postgres) = connection {
                    conversations::table
                        .filter(conversations::id.eq_any(stale().select(messages::conversation_id)))
                        .order(conversations::id)
                        .select(conversations::id)
                        .for_update()
                        .load::<i64>(postgres)?;
                }
                let replies = diesel::update(stale())
                    .set(ended(MessageStatus::Interrupted))
                    .returning(columns_of!(MessageRow))
                    .load::<MessageRow>(connection)?;
                let mut chats: Vec<i64> = replies.iter().map(|row| row.conversation_id).collect();
                chats.sort_unstable();
                chats.dedup();
                let owners = conversations::table
                    .filter(conversations::id.eq_any(chats))
                    .select((conversations::id, conversations::user_id))
                    .load::<(i64, i64)>(connection)?;
                Ok((replies, owners))
            })
        })
        .await?;
    let owners: HashMap<i64, i64> = owners.into_iter().collect();
    let mut interrupted = replies
        .into_iter()
        .map(|row| {
            let owner = owners.get(&row.conversation_id).copied().ok_or_else(|| {
                corrupt(format!(
                    "conversation {} of an interrupted reply has no owner",
                    row.conversation_id
                ))
            })?;
            Ok((UserId::new(owner), row.into_message()?))
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    interrupted.sort_by_key(|(_, message)| message.id);
    Ok(interrupted)
}

/// On PostgreSQL, locks the conversation `conversation` for the rest of the
/// transaction. Every write to a reply takes its conversation first, as
/// `begin_exchange` does, so two of them on one conversation queue instead of
/// deadlocking: without it, a reply being finished (its message row first) and a
/// message being sent (its conversation first, then the one-streaming-reply index
/// entry the finish holds) could wait on each other. SQLite has one writer at a
/// time, and no `FOR UPDATE`.
fn lock_conversation(connection: &mut AnyConnection, conversation: i64) -> QueryResult<()> {
    if let AnyConnection::Postgresql(postgres) = connection {
        conversations::table
            .find(conversation)
            .select(conversations::id)
            .for_update()
            .load::<i64>(postgres)?;
    }
    Ok(())
}

/// [`lock_conversation`] for the conversation of the message `reply`.
fn lock_conversation_of(connection: &mut AnyConnection, reply: MessageId) -> QueryResult<()> {
    if let AnyConnection::Postgresql(postgres) = connection {
        conversations::table
            .filter(
                conversations::id.nullable().eq(messages::table
                    .find(reply.get())
                    .select(messages::conversation_id)
                    .single_value()),
            )
            .select(conversations::id)
            .for_update()
            .load::<i64>(postgres)?;
    }
    Ok(())
}

/// `messages.status = 'streaming'`, the status written into the SQL rather than bound:
/// SQLite (and PostgreSQL's generic plans) use a partial index only for a query whose
/// own text implies the index's predicate, and a bound value does not.
fn streaming() -> SqlLiteral<Bool> {
    sql("messages.status = 'streaming'")
}

/// The changes that end a streaming reply with `status`: a finished reply has no
/// deltas to resume after and no writer to hear from.
type Ended = (
    diesel::dsl::Eq<messages::status, &'static str>,
    diesel::dsl::Eq<messages::reply_ends, Option<String>>,
    diesel::dsl::Eq<messages::heard_at, Option<NaiveDateTime>>,
);

fn ended(status: MessageStatus) -> Ended {
    (
        messages::status.eq(status.as_str()),
        messages::reply_ends.eq(None),
        messages::heard_at.eq(None),
    )
}

/// The bot's message `reply` in `owner`'s conversation `conversation`, with its
/// stored delta ends.
fn owned_reply(
    connection: &mut AnyConnection,
    owner: UserId,
    conversation: ConversationId,
    reply: MessageId,
) -> QueryResult<Option<(MessageRow, Option<String>)>> {
    messages::table
        .find(reply.get())
        .filter(messages::conversation_id.eq(conversation.get()))
        .filter(exists(owned(owner, conversation)))
        .select((columns_of!(MessageRow), messages::reply_ends))
        .get_result(connection)
        .optional()
}

/// A stored reply with its delta ends, refused as corrupt when the ends do not fit
/// its text: a reader resuming after a delta would get a gap or a repeat.
fn snapshot(row: MessageRow, ends: Option<String>) -> Result<ReplySnapshot, StorageError> {
    let mut message = row.into_message()?;
    let id = message.id;
    let refused = || {
        corrupt(format!(
            "message {id}: the stored delta ends {ends:?} do not fit its text"
        ))
    };
    let parsed = parse_ends(ends.as_deref()).ok_or_else(refused)?;
    let text =
        ReplyText::from_parts(std::mem::take(&mut message.text), parsed).ok_or_else(refused)?;
    let ends = text.ends().to_vec();
    message.text = text.into_string();
    Ok(ReplySnapshot { message, ends })
}

/// Delta ends as `reply_ends` holds them: comma-separated decimal.
fn join_ends(ends: &[usize]) -> String {
    let mut joined = String::with_capacity(ends.len() * 4);
    for (i, end) in ends.iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(&end.to_string());
    }
    joined
}

/// The delta ends `reply_ends` holds, none when it is NULL or empty; `None` when it
/// is not comma-separated decimal.
fn parse_ends(stored: Option<&str>) -> Option<Vec<usize>> {
    match stored {
        None | Some("") => Some(Vec::new()),
        Some(stored) => stored
            .split(',')
            .map(|end| {
                // `parse` alone would take a sign.
                (!end.is_empty() && end.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| end.parse().ok())
                    .flatten()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_ends_round_trip_as_comma_separated_decimal() {
        for ends in [vec![], vec![3], vec![3, 7, 12], vec![usize::MAX]] {
            let joined = join_ends(&ends);
            assert_eq!(parse_ends(Some(&joined)), Some(ends));
        }
        assert_eq!(join_ends(&[3, 7, 12]), "3,7,12");
        assert_eq!(parse_ends(None), Some(vec![]));
    }

    #[test]
    fn anything_else_is_refused() {
        for garbage in [
            ",",
            "3,",
            ",3",
            "3,,7",
            "+3",
            "-1",
            " 3",
            "3 ",
            "x",
            "3;7",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_ends(Some(garbage)), None, "{garbage:?}");
        }
    }
}
