//! Streaming replies against real SQLite and PostgreSQL: begun with the user's
//! message, checkpointed, finished, discarded, interrupted and swept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chatbot_domain::ports::{ConversationRepository, MessageRepository, UserRepository};
use chatbot_domain::{
    BegunExchange, Conversation, ConversationName, DisplayName, Message, MessageId, MessageStatus,
    NewConversation, NewMessage, NewUser, PasswordHash, ReplyText, Revision, Sender, StorageError,
    Timestamp, User, Username, Window,
};
use chatbot_persistence::on_both_backends;
use chatbot_persistence::testing::TestDb;

/// 2026-11-25T06:07:14.000Z plus `millis`.
fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_795_586_834_000 + millis).unwrap()
}

async fn user(db: &TestDb, name: &str) -> User {
    db.db
        .insert_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            email: None,
            password_hash: PasswordHash::new(format!("hash of {name}")),
            created_at: at(0),
        })
        .await
        .unwrap()
}

async fn conversation(db: &TestDb, owner: &User, name: &str) -> Conversation {
    db.db
        .insert_conversation(
            NewConversation {
                owner: owner.id,
                name: ConversationName::parse(name).unwrap(),
                created_at: at(0),
            },
            u32::MAX,
        )
        .await
        .unwrap()
        .expect("below the most conversations")
}

fn said(text: &str, millis: i64) -> NewMessage {
    NewMessage {
        sender: Sender::User,
        text: text.to_owned(),
        status: MessageStatus::Complete,
        created_at: at(millis),
    }
}

async fn try_begin(
    db: &TestDb,
    owner: &User,
    chat: &Conversation,
    text: &str,
    millis: i64,
) -> Result<Option<BegunExchange>, StorageError> {
    db.db
        .begin_exchange(owner.id, chat.id, said(text, millis))
        .await
}

/// Begins an exchange that must succeed, and returns it.
async fn begin(db: &TestDb, owner: &User, chat: &Conversation, millis: i64) -> BegunExchange {
    try_begin(db, owner, chat, "question", millis)
        .await
        .unwrap()
        .unwrap()
}

fn text_of(pieces: &[&str]) -> ReplyText {
    let mut text = ReplyText::new();
    for piece in pieces {
        text.push(piece);
    }
    text
}

fn messages_in(db: &TestDb, chat: &Conversation) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = {}",
        chat.id
    ))
}

async fn listed(db: &TestDb, owner: &User, chat: &Conversation) -> Vec<Message> {
    db.db
        .list_messages(owner.id, chat.id, Window::ALL)
        .await
        .unwrap()
        .unwrap()
}

on_both_backends! {
    async fn a_reply_ending_while_a_message_is_sent_never_deadlocks(db: &TestDb) {
        // Every write to a reply takes the conversation's lock first, as sending does:
        // racing them, the send waits and then sees either the reply still streaming
        // (a conflict) or the reply ended (a new exchange); nothing fails otherwise.
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "Race").await;
        let mut reply = begin(db, &alice, &chat, 0).await.reply.id;
        for round in 1..=40 {
            let text = text_of(&["so ", "far"]);
            let (checkpointed, sent) = tokio::join!(
                db.db.checkpoint_reply(reply, &text, at(round)),
                try_begin(db, &alice, &chat, "again", round),
            );
            assert!(checkpointed.unwrap(), "round {round}");
            assert!(matches!(sent, Err(StorageError::Conflict)), "round {round}: {sent:?}");
            let (finished, sent) = tokio::join!(
                db.db.finish_reply(reply, "done".to_owned(), MessageStatus::Complete),
                try_begin(db, &alice, &chat, "next", round),
            );
            assert!(finished.unwrap().is_some(), "round {round}");
            reply = match sent {
                Ok(Some(begun)) => begun.reply.id,
                Err(StorageError::Conflict) => begin(db, &alice, &chat, round).await.reply.id,
                other => panic!("round {round}: {other:?}"),
            };
        }
    }

    async fn beginning_stores_the_message_then_an_empty_streaming_reply(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "Hiking").await;
        let begun = begin(db, &alice, &chat, 1_500).await;

        assert_eq!(begun.conversation_name.as_str(), "Hiking");
        let question = &begun.user_message;
        assert_eq!((question.sender, question.text.as_str()), (Sender::User, "question"));
        assert_eq!((question.status, question.created_at), (MessageStatus::Complete, at(1_500)));
        let reply = &begun.reply;
        assert_eq!((reply.sender, reply.text.as_str()), (Sender::Bot, ""));
        assert_eq!((reply.status, reply.created_at), (MessageStatus::Streaming, at(1_500)));
        assert_eq!(reply.conversation_id, chat.id);
        assert!(question.id < reply.id, "the reply comes after the message");
        assert_eq!(listed(db, &alice, &chat).await, [begun.user_message.clone(), begun.reply.clone()]);

        let conversations = db.db.list_conversations(alice.id, Window::ALL).await.unwrap();
        assert_eq!(conversations[0].updated_at, at(1_500), "the conversation is active then");
        let snapshot = db.db.find_reply(alice.id, chat.id, reply.id).await.unwrap().unwrap();
        assert_eq!(snapshot.message, begun.reply);
        assert!(snapshot.ends.is_empty());
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) AS n FROM messages WHERE id = {} AND heard_at IS NOT NULL", reply.id)),
            1,
            "heard of when created"
        );
    }

    async fn a_second_exchange_while_a_reply_streams_conflicts_and_stores_nothing(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let other = conversation(db, &alice, "other").await;
        begin(db, &alice, &chat, 1).await;

        let second = try_begin(db, &alice, &chat, "again", 2).await;
        assert!(matches!(second, Err(StorageError::Conflict)), "{second:?}");
        assert_eq!(messages_in(db, &chat), 2, "the second message was rolled back with its reply");
        let conversations = db.db.list_conversations(alice.id, Window::ALL).await.unwrap();
        let updated = conversations.iter().find(|c| c.id == chat.id).unwrap().updated_at;
        assert_eq!(updated, at(1), "nor marked active");

        begin(db, &alice, &other, 3).await;
        assert_eq!(messages_in(db, &other), 2, "one reply per conversation, not per user");
    }

    async fn another_users_conversation_is_not_found_and_nothing_is_stored(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let chat = conversation(db, &alice, "c").await;
        assert!(try_begin(db, &bob, &chat, "intrusion", 1).await.unwrap().is_none());
        let missing = Conversation { id: chatbot_domain::ConversationId::new(chat.id.get() + 1_000), ..chat.clone() };
        assert!(try_begin(db, &alice, &missing, "hello?", 1).await.unwrap().is_none());
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 0);
    }

    async fn a_checkpoint_is_what_a_reader_finds(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let reply = begin(db, &alice, &chat, 0).await.reply;
        let text = text_of(&["Hel", "lo, ", "wörld"]);

        assert!(db.db.checkpoint_reply(reply.id, &text, at(100)).await.unwrap());
        let snapshot = db.db.find_reply(alice.id, chat.id, reply.id).await.unwrap().unwrap();
        assert_eq!(snapshot.message.text, "Hello, wörld");
        assert_eq!(snapshot.message.status, MessageStatus::Streaming);
        assert_eq!(snapshot.ends, [3, 7, 13]);
        assert_eq!(snapshot.ends, text.ends());

        let more = text_of(&["Hel", "lo, ", "wörld", "!"]);
        assert!(db.db.checkpoint_reply(reply.id, &more, at(200)).await.unwrap());
        let snapshot = db.db.find_reply(alice.id, chat.id, reply.id).await.unwrap().unwrap();
        assert_eq!((snapshot.message.text.as_str(), snapshot.ends.as_slice()), ("Hello, wörld!", &[3, 7, 13, 14][..]));
    }

    async fn a_message_is_found_only_in_its_owners_conversation(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let chat = conversation(db, &alice, "c").await;
        let other = conversation(db, &alice, "other").await;
        let begun = begin(db, &alice, &chat, 0).await;
        let reply = begun.reply.id;

        assert!(db.db.find_reply(bob.id, chat.id, reply).await.unwrap().is_none(), "foreign");
        assert!(db.db.find_reply(alice.id, other.id, reply).await.unwrap().is_none(), "elsewhere");
        let theirs = db.db.find_reply(alice.id, chat.id, begun.user_message.id).await.unwrap().unwrap();
        assert_eq!((theirs.message, theirs.ends), (begun.user_message.clone(), vec![]), "the user's, as it is");
        assert!(db.db.find_reply(alice.id, chat.id, MessageId::new(reply.get() + 1_000)).await.unwrap().is_none());
    }

    async fn stored_delta_ends_that_do_not_fit_are_corrupt(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let reply = begin(db, &alice, &chat, 0).await.reply.id;
        assert!(db.db.checkpoint_reply(reply, &text_of(&["añb"]), at(1)).await.unwrap());
        for garbage in ["x", "1,,2", "2", "9"] {
            db.execute(&format!("UPDATE messages SET reply_ends = '{garbage}' WHERE id = {reply}"));
            let found = db.db.find_reply(alice.id, chat.id, reply).await;
            assert!(matches!(found, Err(StorageError::Failed(_))), "{garbage}: {found:?}");
        }
    }

    async fn a_finished_reply_keeps_its_text_and_status_and_takes_no_more(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let reply = begin(db, &alice, &chat, 0).await.reply;
        assert!(db.db.checkpoint_reply(reply.id, &text_of(&["Hi", " there"]), at(1)).await.unwrap());

        let finished = db.db.finish_reply(reply.id, "Hi there.".to_owned(), MessageStatus::Complete).await.unwrap().unwrap();
        assert_eq!(finished, Message { text: "Hi there.".to_owned(), status: MessageStatus::Complete, ..reply.clone() });
        let snapshot = db.db.find_reply(alice.id, chat.id, reply.id).await.unwrap().unwrap();
        assert_eq!(snapshot.message, finished);
        assert!(snapshot.ends.is_empty(), "no deltas once finished");
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) AS n FROM messages WHERE id = {} AND reply_ends IS NULL AND heard_at IS NULL", reply.id)),
            1
        );

        assert!(!db.db.checkpoint_reply(reply.id, &text_of(&["late"]), at(2)).await.unwrap());
        let again = db.db.finish_reply(reply.id, "other".to_owned(), MessageStatus::Failed).await.unwrap();
        assert_eq!(again, None);
        assert_eq!(listed(db, &alice, &chat).await[1], finished, "unchanged by either");

        let failed = begin(db, &alice, &chat, 3).await.reply;
        let stored = db.db.finish_reply(failed.id, "half a rep".to_owned(), MessageStatus::Failed).await.unwrap().unwrap();
        assert_eq!((stored.text.as_str(), stored.status), ("half a rep", MessageStatus::Failed));
    }

    async fn discarding_deletes_only_a_streaming_reply(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let begun = begin(db, &alice, &chat, 0).await;
        db.db.discard_reply(begun.reply.id).await.unwrap();
        assert_eq!(listed(db, &alice, &chat).await, std::slice::from_ref(&begun.user_message));
        db.db.discard_reply(begun.reply.id).await.unwrap();

        let finished = begin(db, &alice, &chat, 1).await.reply;
        let finished = db.db.finish_reply(finished.id, "kept".to_owned(), MessageStatus::Complete).await.unwrap().unwrap();
        db.db.discard_reply(finished.id).await.unwrap();
        db.db.discard_reply(begun.user_message.id).await.unwrap();
        let kept = listed(db, &alice, &chat).await;
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0], begun.user_message);
        assert_eq!(kept[2], finished);
    }

    async fn interrupting_keeps_the_checkpoint_and_leaves_a_finished_reply_alone(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let chat = conversation(db, &alice, "c").await;
        let begun = begin(db, &alice, &chat, 0).await;
        let reply = begun.reply.id;
        assert!(db.db.checkpoint_reply(reply, &text_of(&["So ", "far"]), at(5)).await.unwrap());

        assert_eq!(db.db.interrupt_reply(bob.id, chat.id, reply).await.unwrap(), None, "foreign");
        assert_eq!(
            db.db.interrupt_reply(alice.id, chat.id, begun.user_message.id).await.unwrap(),
            Some(begun.user_message.clone()),
            "the user's, unchanged"
        );
        let snapshot = db.db.find_reply(alice.id, chat.id, reply).await.unwrap().unwrap();
        assert_eq!(snapshot.message.status, MessageStatus::Streaming, "neither stopped it");

        let stopped = db.db.interrupt_reply(alice.id, chat.id, reply).await.unwrap().unwrap();
        assert_eq!(stopped, Message { text: "So far".to_owned(), status: MessageStatus::Interrupted, ..begun.reply.clone() });
        let snapshot = db.db.find_reply(alice.id, chat.id, reply).await.unwrap().unwrap();
        assert_eq!(snapshot.message, stopped);
        assert!(snapshot.ends.is_empty());
        assert!(!db.db.checkpoint_reply(reply, &text_of(&["So ", "far", "!"]), at(6)).await.unwrap());
        assert_eq!(db.db.finish_reply(reply, "x".to_owned(), MessageStatus::Complete).await.unwrap(), None);
        assert_eq!(db.db.interrupt_reply(alice.id, chat.id, reply).await.unwrap(), Some(stopped), "again: as it is");

        let next = begin(db, &alice, &chat, 10).await.reply;
        let finished = db.db.finish_reply(next.id, "done".to_owned(), MessageStatus::Complete).await.unwrap().unwrap();
        assert_eq!(db.db.interrupt_reply(alice.id, chat.id, next.id).await.unwrap(), Some(finished), "finished: as it is");
    }

    async fn a_reply_that_ended_makes_way_for_the_next(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let first = begin(db, &alice, &chat, 0).await.reply;
        db.db.finish_reply(first.id, "one".to_owned(), MessageStatus::Complete).await.unwrap().unwrap();
        let second = begin(db, &alice, &chat, 1).await.reply;
        db.db.interrupt_reply(alice.id, chat.id, second.id).await.unwrap().unwrap();
        let third = begin(db, &alice, &chat, 2).await.reply;
        db.db.discard_reply(third.id).await.unwrap();
        let fourth = begin(db, &alice, &chat, 3).await.reply;
        db.db.finish_reply(fourth.id, "half".to_owned(), MessageStatus::Failed).await.unwrap().unwrap();
        begin(db, &alice, &chat, 4).await;
        assert_eq!(messages_in(db, &chat), 9);
        let statuses: Vec<_> = listed(db, &alice, &chat).await.iter().filter(|m| m.sender == Sender::Bot).map(|m| m.status).collect();
        assert_eq!(
            statuses,
            [MessageStatus::Complete, MessageStatus::Interrupted, MessageStatus::Failed, MessageStatus::Streaming]
        );
    }

    async fn the_sweep_interrupts_only_streaming_replies_silent_since_the_cut_off(db: &TestDb) {
        let alice = user(db, "alice").await;
        let mut chats = Vec::new();
        for name in ["alive", "silent", "finished", "just heard"] {
            chats.push(conversation(db, &alice, name).await);
        }
        let alive = begin(db, &alice, &chats[0], 0).await.reply;
        assert!(db.db.checkpoint_reply(alive.id, &text_of(&["still"]), at(100)).await.unwrap());
        let silent = begin(db, &alice, &chats[1], 10).await.reply;
        assert!(db.db.checkpoint_reply(silent.id, &text_of(&["part", "ial"]), at(30)).await.unwrap());
        let finished = begin(db, &alice, &chats[2], 20).await.reply;
        let finished = db.db.finish_reply(finished.id, "whole".to_owned(), MessageStatus::Complete).await.unwrap().unwrap();
        let just_heard = begin(db, &alice, &chats[3], 50).await.reply;

        let swept_replies = db.db.interrupt_stale_replies(at(50)).await.unwrap();
        let found = |chat: &Conversation, reply: MessageId| {
            let (db, owner, chat) = (&db.db, alice.id, chat.id);
            async move { db.find_reply(owner, chat, reply).await.unwrap().unwrap() }
        };
        let swept = found(&chats[1], silent.id).await;
        assert_eq!((swept.message.text.as_str(), swept.message.status), ("partial", MessageStatus::Interrupted));
        assert!(swept.ends.is_empty());
        assert_eq!(swept_replies, [(alice.id, swept.message.clone())], "each as stored, with its owner");
        assert_eq!(found(&chats[0], alive.id).await.message.status, MessageStatus::Streaming);
        assert_eq!(found(&chats[2], finished.id).await.message, finished);
        assert_eq!(found(&chats[3], just_heard.id).await.message.status, MessageStatus::Streaming, "heard at the cut-off");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages WHERE heard_at IS NOT NULL"), 2);

        assert_eq!(db.db.interrupt_stale_replies(at(50)).await.unwrap(), [], "nothing left to sweep");
        begin(db, &alice, &chats[1], 60).await;
    }

    async fn the_sweep_returns_every_reply_it_interrupted_with_its_own_owner(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let alices = conversation(db, &alice, "a").await;
        let bobs = conversation(db, &bob, "b").await;
        let alices_reply = begin(db, &alice, &alices, 0).await.reply;
        let bobs_reply = begin(db, &bob, &bobs, 1).await.reply;
        assert!(db.db.checkpoint_reply(bobs_reply.id, &text_of(&["so", " far"]), at(2)).await.unwrap());

        let swept = db.db.interrupt_stale_replies(at(10)).await.unwrap();
        let owners: Vec<_> = swept.iter().map(|(owner, message)| (*owner, message.id)).collect();
        assert_eq!(owners, [(alice.id, alices_reply.id), (bob.id, bobs_reply.id)], "in id order");
        for (owner, message) in &swept {
            assert_eq!(message.status, MessageStatus::Interrupted);
            let chat = if *owner == alice.id { &alices } else { &bobs };
            let stored = listed(db, if *owner == alice.id { &alice } else { &bob }, chat).await;
            assert_eq!(stored.last(), Some(message), "as stored");
        }
        assert_eq!(swept[1].1.text, "so far", "with its last checkpoint's text");
    }

    async fn every_step_of_a_reply_raises_the_owners_revision(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c").await;
        let mut last = db.db.revision(alice.id).await.unwrap();
        let mut rose = |now: Revision, what: &str| {
            assert!(now > last, "{what}: {now:?} after {last:?}");
            last = now;
        };
        let reply = begin(db, &alice, &chat, 0).await.reply.id;
        rose(db.db.revision(alice.id).await.unwrap(), "begun");
        db.db.checkpoint_reply(reply, &text_of(&["a"]), at(1)).await.unwrap();
        rose(db.db.revision(alice.id).await.unwrap(), "checkpointed");
        db.db.interrupt_reply(alice.id, chat.id, reply).await.unwrap();
        rose(db.db.revision(alice.id).await.unwrap(), "interrupted");
    }
}
