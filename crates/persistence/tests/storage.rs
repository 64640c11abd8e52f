//! The storage ports against real SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chatbot_domain::ports::{ConversationRepository, MessageRepository, UserRepository};
use chatbot_domain::{
    Conversation, ConversationCursor, ConversationId, ConversationName, DisplayName, Exchange,
    Message, MessageCursor, MessageId, MessageStatus, NewConversation, NewMessage, NewUser,
    PasswordHash, ProfileChange, Revision, Sender, StorageError, Timestamp, User, UserId, Username,
    Window,
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

async fn conversation(db: &TestDb, owner: &User, name: &str, millis: i64) -> Conversation {
    db.db
        .insert_conversation(
            NewConversation {
                owner: owner.id,
                name: ConversationName::parse(name).unwrap(),
                created_at: at(millis),
            },
            u32::MAX,
        )
        .await
        .unwrap()
        .expect("below the most conversations")
}

/// What the user says at `millis`.
fn said(text: &str, millis: i64) -> NewMessage {
    NewMessage {
        sender: Sender::User,
        text: text.to_owned(),
        status: MessageStatus::Complete,
        created_at: at(millis),
    }
}

/// `owner` says `text` in `conversation` at `millis` and the bot answers `reply`,
/// stored as sending a message stores them: the user's message with an empty streaming
/// reply after it, then the reply's text, complete. `None` when `owner` has no such
/// conversation.
async fn exchange(
    db: &TestDb,
    owner: &User,
    conversation: ConversationId,
    text: &str,
    reply: &str,
    millis: i64,
) -> Option<Exchange> {
    let begun = db
        .db
        .begin_exchange(owner.id, conversation, said(text, millis))
        .await
        .unwrap()?;
    let bot_message = db
        .db
        .finish_reply(begun.reply.id, reply.to_owned(), MessageStatus::Complete)
        .await
        .unwrap()
        .expect("the reply was streaming");
    Some(Exchange {
        user_message: begun.user_message,
        bot_message,
    })
}

fn window<C>(before: Option<C>, limit: usize) -> Window<C> {
    Window {
        before,
        limit: Some(limit),
    }
}

/// Asserts that `owner`'s revision rose since `last`, and moves `last` on.
async fn rose(db: &TestDb, owner: UserId, last: &mut Revision, what: &str) {
    let now = db.db.revision(owner).await.unwrap();
    assert!(now > *last, "{what}: {now:?} after {last:?}");
    *last = now;
}

fn ids_of(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

on_both_backends! {
    async fn no_user_gets_past_the_most_conversations_even_all_at_once(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let new = |owner: &User, index: usize| NewConversation {
            owner: owner.id,
            name: ConversationName::parse(&format!("c{index}")).unwrap(),
            created_at: at(0),
        };
        let inserts = (0..12).map(|index| {
            let db = db.db.clone();
            let conversation = new(&alice, index);
            tokio::spawn(async move { db.insert_conversation(conversation, 5).await.unwrap() })
        });
        let mut created = 0;
        for insert in inserts.collect::<Vec<_>>() {
            created += usize::from(insert.await.unwrap().is_some());
        }
        assert_eq!(created, 5);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM conversations"), 5);
        // The most is per user; and a deleted conversation makes room.
        assert!(db.db.insert_conversation(new(&bob, 0), 5).await.unwrap().is_some());
        let first = db.db.list_conversations(alice.id, Window::ALL).await.unwrap()[0].id;
        assert!(db.db.delete_conversation(alice.id, first).await.unwrap());
        assert!(db.db.insert_conversation(new(&alice, 12), 5).await.unwrap().is_some());
        assert!(db.db.insert_conversation(new(&alice, 13), 5).await.unwrap().is_none());
    }

    async fn usernames_are_unique_regardless_of_case_and_kept_as_typed(db: &TestDb) {
        let alice = user(db, "Alice").await;
        assert_eq!(alice.username.as_str(), "Alice");

        let duplicate = db.db.insert_user(NewUser {
            username: Username::parse("aLICE").unwrap(),
            display_name: DisplayName::parse("Alice Again").unwrap(),
            email: None,
            password_hash: PasswordHash::new("other"),
            created_at: at(1),
        }).await;
        assert!(matches!(duplicate, Err(StorageError::Conflict)), "{duplicate:?}");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);

        let found = db.db.find_credentials(&Username::parse("ALICE").unwrap()).await.unwrap().unwrap();
        assert_eq!(found.user, alice);
        assert_eq!(found.password_hash.as_str(), "hash of Alice");
        assert!(db.db.find_credentials(&Username::parse("bob").unwrap()).await.unwrap().is_none());
    }

    async fn a_conversation_is_invisible_and_unchangeable_to_other_users(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let chat = conversation(db, &alice, "Alice's", 0).await;
        let other_name = ConversationName::parse("Bob's now").unwrap();

        assert!(db.db.list_conversations_with_messages(bob.id, Window::ALL).await.unwrap().is_empty());
        assert_eq!(db.db.rename_conversation(bob.id, chat.id, other_name, at(1)).await.unwrap(), None);
        assert!(exchange(db, &bob, chat.id, "intrusion", "no", 2).await.is_none());
        assert!(!db.db.delete_conversation(bob.id, chat.id).await.unwrap());

        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].conversation, chat, "nothing of it changed");
        assert!(listed[0].messages.is_empty());
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 0);
    }

    async fn missing_conversations_are_reported_as_absent(db: &TestDb) {
        let alice = user(db, "alice").await;
        let missing = ConversationId::new(999_999);
        let name = ConversationName::parse("x").unwrap();
        assert_eq!(db.db.rename_conversation(alice.id, missing, name, at(0)).await.unwrap(), None);
        assert!(!db.db.delete_conversation(alice.id, missing).await.unwrap());
        assert!(exchange(db, &alice, missing, "hello?", "no", 0).await.is_none());
    }

    async fn renaming_changes_the_name_and_marks_activity(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "Old", 0).await;
        let renamed = db.db
            .rename_conversation(alice.id, chat.id, ConversationName::parse("New").unwrap(), at(5_000))
            .await.unwrap().unwrap();
        assert_eq!(renamed.name.as_str(), "New");
        assert_eq!(renamed.created_at, at(0));
        assert_eq!(renamed.updated_at, at(5_000));
        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        assert_eq!(listed[0].conversation, renamed);
    }

    async fn lists_most_recently_active_first_with_messages_oldest_first(db: &TestDb) {
        let alice = user(db, "alice").await;
        // Activity times straddle whole seconds, where a text-stored timestamp would
        // sort wrongly if its format varied.
        let first = conversation(db, &alice, "first", 0).await;
        let second = conversation(db, &alice, "second", 500).await;
        let third = conversation(db, &alice, "third", 1_000).await;
        let hello = exchange(db, &alice, first.id, "hello", "hi there", 1_999).await.unwrap();
        let later = exchange(db, &alice, first.id, "bye", "bye bye", 2_000).await.unwrap();

        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        let names: Vec<_> = listed.iter().map(|c| c.conversation.name.as_str()).collect();
        assert_eq!(names, ["first", "third", "second"]);
        assert_eq!(listed[0].conversation.updated_at, at(2_000));
        assert_eq!(
            listed[0].messages,
            [hello.user_message, hello.bot_message, later.user_message, later.bot_message]
        );
        assert!(listed[1].messages.is_empty() && listed[2].messages.is_empty());
        assert_eq!(listed[1].conversation, third);
        assert_eq!(listed[2].conversation, second);
    }

    async fn equally_recent_conversations_list_the_newer_first(db: &TestDb) {
        let alice = user(db, "alice").await;
        let older = conversation(db, &alice, "older", 0).await;
        let newer = conversation(db, &alice, "newer", 0).await;
        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        let ids: Vec<_> = listed.iter().map(|c| c.conversation.id).collect();
        assert_eq!(ids, [newer.id, older.id]);
    }

    async fn timestamps_read_back_exactly(db: &TestDb) {
        let alice = user(db, "alice").await;
        for millis in [0, 1, 123, 999, 86_400_000] {
            let chat = conversation(db, &alice, "t", millis).await;
            let stored = exchange(db, &alice, chat.id, "t", "t", millis).await.unwrap();
            let times = (chat.created_at, stored.user_message.created_at, stored.bot_message.created_at);
            assert_eq!(times, (at(millis), at(millis), at(millis)));
        }
        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        for entry in &listed {
            assert_eq!(entry.conversation.created_at, entry.messages[0].created_at);
        }
        assert_eq!(listed[0].conversation.created_at.to_string(), "2026-11-26T06:07:14.000Z");
    }

    async fn unicode_and_hostile_text_round_trips(db: &TestDb) {
        let alice = user(db, "alice").await;
        let name = "Café ☕ 日本語 — שלום 🚀";
        let text = "Emoji 👩‍👩‍👧‍👦, combining e\u{301}, RTL مرحبا, CJK 漢字\n\ttabbed \"quotes\" \\ '; DROP TABLE users; --";
        let chat = conversation(db, &alice, name, 0).await;
        exchange(db, &alice, chat.id, text, text, 1).await.unwrap();

        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        assert_eq!(listed[0].conversation.name.as_str(), name);
        assert_eq!(listed[0].messages[0].text, text);
        assert_eq!(listed[0].messages[1].text, text, "the bot's too");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);
    }

    async fn deleting_a_conversation_deletes_its_messages_only(db: &TestDb) {
        let alice = user(db, "alice").await;
        let doomed = conversation(db, &alice, "doomed", 0).await;
        let kept = conversation(db, &alice, "kept", 0).await;
        for (i, chat) in [doomed.id, doomed.id, kept.id].into_iter().enumerate() {
            exchange(db, &alice, chat, "m", "r", i as i64).await.unwrap();
        }
        assert!(db.db.delete_conversation(alice.id, doomed.id).await.unwrap());
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = {}", doomed.id)),
            0
        );
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 2, "the kept exchange");
        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].conversation.id, kept.id);
        assert!(!db.db.delete_conversation(alice.id, doomed.id).await.unwrap(), "gone for good");
    }

    async fn concurrent_writers_all_succeed(db: &TestDb) {
        // One reply streams at a time in a conversation, so each writer sends its
        // messages in a conversation of its own; its renames land on the others', in
        // the middle of their exchanges. All of them are alice's: every write raises
        // the same revision.
        let alice = user(db, "alice").await;
        let mut chats = Vec::new();
        for writer in 0..16 {
            chats.push(conversation(db, &alice, &format!("{writer}"), 0).await.id);
        }
        let writers = (0..16).map(|writer| {
            let database = db.db.clone();
            let owner = alice.id;
            let chats = chats.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let message = said(&format!("{writer}/{i}"), i as i64);
                    let begun = database.begin_exchange(owner, chats[writer], message).await?.expect("alice's");
                    let reply = format!("re {writer}/{i}");
                    database.finish_reply(begun.reply.id, reply, MessageStatus::Complete).await?.expect("streaming");
                    if i % 5 == 0 {
                        let name = ConversationName::parse(&format!("by {writer}")).unwrap();
                        let other = chats[(writer + i) % chats.len()];
                        database.rename_conversation(owner, other, name, at(i as i64)).await?;
                    }
                }
                Ok::<_, StorageError>(())
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 16 * 20 * 2);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages WHERE status = 'complete'"), 16 * 20 * 2);
    }

    async fn conversation_windows_walk_the_whole_list_in_order(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        conversation(db, &bob, "not alice's", 5).await;
        // Three conversations active in the same millisecond, where only ids decide.
        for (name, millis) in [("a", 0), ("b", 7), ("c", 7), ("d", 7), ("e", 3)] {
            let chat = conversation(db, &alice, name, millis).await;
            exchange(db, &alice, chat.id, &format!("in {name}"), "reply", millis).await.unwrap();
        }
        let all = db.db.list_conversations(alice.id, Window::ALL).await.unwrap();
        let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["d", "c", "b", "e", "a"]);

        let mut walked = Vec::new();
        let mut before = None;
        loop {
            let page = db.db.list_conversations(alice.id, window(before, 2)).await.unwrap();
            let with_messages = db.db.list_conversations_with_messages(alice.id, window(before, 2)).await.unwrap();
            assert_eq!(with_messages.iter().map(|c| &c.conversation).collect::<Vec<_>>(), page.iter().collect::<Vec<_>>());
            for listed in &with_messages {
                assert_eq!(listed.messages.len(), 2);
                assert_eq!(listed.messages[0].text, format!("in {}", listed.conversation.name));
                assert_eq!(listed.messages[1].text, "reply");
            }
            let Some(last) = page.last() else { break };
            before = Some(ConversationCursor::after(last));
            walked.extend(page);
        }
        assert_eq!(walked, all);
    }

    async fn message_windows_walk_back_from_the_latest(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "long", 0).await;
        let mut said = Vec::new();
        for i in 0..5 {
            // Clocks may disagree: the order is the order of storage, not of time.
            let stored = exchange(db, &alice, chat.id, &format!("m{i}"), &format!("r{i}"), 100 - i).await.unwrap();
            said.extend([stored.user_message.id, stored.bot_message.id]);
        }
        let all = db.db.list_messages(alice.id, chat.id, Window::ALL).await.unwrap().unwrap();
        assert_eq!(ids_of(&all), said);
        // Pages of 3 cut exchanges in two.
        let latest = db.db.list_messages(alice.id, chat.id, window(None, 3)).await.unwrap().unwrap();
        assert_eq!(ids_of(&latest), said[7..]);
        let earlier = window(Some(MessageCursor(said[7])), 3);
        let earlier = db.db.list_messages(alice.id, chat.id, earlier).await.unwrap().unwrap();
        assert_eq!(ids_of(&earlier), said[4..7]);
        let first = window(Some(MessageCursor(said[1])), 3);
        assert_eq!(ids_of(&db.db.list_messages(alice.id, chat.id, first).await.unwrap().unwrap()), said[..1]);
        let listed = db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        assert_eq!(ids_of(&listed[0].messages), said, "the whole list agrees");
    }

    async fn message_windows_tell_empty_from_missing_and_foreign(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let empty = conversation(db, &alice, "empty", 0).await;
        let listed = db.db.list_messages(alice.id, empty.id, window(None, 10)).await.unwrap();
        assert_eq!(listed, Some(vec![]));
        exchange(db, &alice, empty.id, "private", "secret", 1).await.unwrap();
        assert_eq!(db.db.list_messages(bob.id, empty.id, Window::ALL).await.unwrap(), None);
        let missing = ConversationId::new(empty.id.get() + 1_000);
        assert_eq!(db.db.list_messages(alice.id, missing, Window::ALL).await.unwrap(), None);
    }

    async fn revisions_rise_with_every_change_and_only_then(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let mut last = db.db.revision(alice.id).await.unwrap();
        let bobs = db.db.revision(bob.id).await.unwrap();
        let chat = conversation(db, &alice, "c", 0).await;
        rose(db, alice.id, &mut last, "created").await;
        let begun = db.db.begin_exchange(alice.id, chat.id, said("m", 1)).await.unwrap().unwrap();
        rose(db, alice.id, &mut last, "a message and its reply begun").await;
        db.db.finish_reply(begun.reply.id, "r".to_owned(), MessageStatus::Complete).await.unwrap().unwrap();
        rose(db, alice.id, &mut last, "the reply finished").await;
        let name = ConversationName::parse("renamed").unwrap();
        db.db.rename_conversation(alice.id, chat.id, name.clone(), at(2)).await.unwrap();
        rose(db, alice.id, &mut last, "renamed").await;

        db.db.list_conversations_with_messages(alice.id, Window::ALL).await.unwrap();
        assert!(db.db.rename_conversation(bob.id, chat.id, name, at(3)).await.unwrap().is_none());
        assert!(db.db.begin_exchange(bob.id, chat.id, said("intruder", 3)).await.unwrap().is_none());
        assert_eq!(db.db.revision(alice.id).await.unwrap(), last, "reads and refusals change nothing");
        assert_eq!(db.db.revision(bob.id).await.unwrap(), bobs, "nor do others' changes");

        assert!(db.db.delete_conversation(alice.id, chat.id).await.unwrap());
        rose(db, alice.id, &mut last, "deleted").await;
    }

    async fn account_changes_raise_the_revision_too(db: &TestDb) {
        let alice = user(db, "alice").await;
        let mut last = db.db.revision(alice.id).await.unwrap();
        let renamed = ProfileChange { display_name: Some(DisplayName::parse("Al").unwrap()), email: None };
        db.db.update_profile(alice.id, renamed).await.unwrap().unwrap();
        rose(db, alice.id, &mut last, "a new display name").await;
        assert!(db.db.set_password(alice.id, PasswordHash::new("new hash")).await.unwrap());
        rose(db, alice.id, &mut last, "a new password").await;
        assert!(db.db.delete_user(alice.id).await.unwrap());
        assert_eq!(db.db.revision(alice.id).await.unwrap(), Revision(0), "nothing is left of her");
    }

    async fn a_messages_status_is_stored_and_older_rows_are_complete(db: &TestDb) {
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c", 0).await;
        let begun = db.db.begin_exchange(alice.id, chat.id, said("question", 1)).await.unwrap().unwrap();
        assert_eq!(begun.user_message.status, MessageStatus::Complete);
        assert_eq!(begun.conversation_name.as_str(), "c", "the name comes with it");
        let half = "half a rep".to_owned();
        let stored = db.db.finish_reply(begun.reply.id, half, MessageStatus::Failed).await.unwrap().unwrap();
        assert_eq!(stored.status, MessageStatus::Failed);
        // A row written without a status, as before the column existed.
        db.execute(&format!(
            "INSERT INTO messages (conversation_id, sender, text, created_at) \
             VALUES ({}, 'user', 'old', '2026-11-25 06:07:14.123')",
            chat.id.get()
        ));
        let listed = db.db.list_messages(alice.id, chat.id, Window::ALL).await.unwrap().unwrap();
        let statuses: Vec<_> = listed.iter().map(|m| m.status).collect();
        assert_eq!(statuses, [MessageStatus::Complete, MessageStatus::Failed, MessageStatus::Complete]);
    }

    async fn a_title_replaces_only_the_default_name_and_keeps_the_activity_time(db: &TestDb) {
        let alice = user(db, "alice").await;
        let bob = user(db, "bob").await;
        let default = conversation(db, &alice, ConversationName::DEFAULT, 5).await;
        let named = conversation(db, &alice, "Mine", 5).await;
        let title = |text: &str| ConversationName::parse(text).unwrap();

        assert_eq!(db.db.title_conversation(bob.id, default.id, title("Bob's")).await.unwrap(), None);
        assert_eq!(db.db.title_conversation(alice.id, named.id, title("Title")).await.unwrap(), None);
        let titled = db.db.title_conversation(alice.id, default.id, title("Hiking")).await.unwrap();
        assert_eq!(
            titled,
            Some(Conversation { name: title("Hiking"), ..default.clone() }),
            "as titled: the new name, everything else as it was"
        );
        assert_eq!(
            db.db.title_conversation(alice.id, default.id, title("Again")).await.unwrap(),
            None,
            "titled once: no longer the default"
        );
        let listed = db.db.list_conversations(alice.id, Window::ALL).await.unwrap();
        let by_id = |id| listed.iter().find(|c| c.id == id).unwrap();
        assert_eq!(Some(by_id(default.id)), titled.as_ref());
        assert_eq!(by_id(default.id).updated_at, default.updated_at, "activity stays");
        assert_eq!(by_id(named.id).name.as_str(), "Mine");
    }

    async fn any_write_raises_the_revision_not_only_the_repositories(db: &TestDb) {
        // The rule is the database's: a write path the repositories do not know of
        // yet (an import, a checkpoint of a streaming reply) cannot forget it.
        let alice = user(db, "alice").await;
        let chat = conversation(db, &alice, "c", 0).await;
        exchange(db, &alice, chat.id, "m", "r", 1).await.unwrap();
        let mut last = db.db.revision(alice.id).await.unwrap();
        let id = chat.id.get();
        db.execute(&format!("UPDATE messages SET text = 'edited' WHERE conversation_id = {id}"));
        rose(db, alice.id, &mut last, "a message edited").await;
        db.execute(&format!(
            "INSERT INTO messages (conversation_id, sender, text, created_at) \
             VALUES ({id}, 'bot', 'imported', '2026-11-25 06:07:14.123')"
        ));
        rose(db, alice.id, &mut last, "a message imported").await;
        db.execute(&format!("DELETE FROM messages WHERE conversation_id = {id} AND sender = 'bot'"));
        rose(db, alice.id, &mut last, "a message deleted").await;
        db.execute(&format!("UPDATE conversations SET name = 'titled' WHERE id = {id}"));
        rose(db, alice.id, &mut last, "a title").await;
        db.execute(&format!("DELETE FROM conversations WHERE id = {id}"));
        rose(db, alice.id, &mut last, "a conversation deleted with its messages").await;
    }
}

/// Usernames are the same account whatever their letter case, whatever the database's
/// locale: under ICU's Turkish one, PostgreSQL's `lower('I')` is `ı`, which once made
/// `alice` and `ALICE` two accounts and left `Iris` unable to log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn postgres_usernames_match_alike_under_a_turkish_locale() {
    let test = TestDb::postgres_with_icu_locale("tr-TR");
    assert_eq!(
        test.texts("SELECT lower('I') AS t"),
        ["ı"],
        "the database folds letters the Turkish way"
    );
    user(&test, "alice").await;
    let duplicate = test
        .db
        .insert_user(NewUser {
            username: Username::parse("ALICE").unwrap(),
            display_name: DisplayName::parse("Alice").unwrap(),
            email: None,
            password_hash: PasswordHash::new("other"),
            created_at: at(1),
        })
        .await;
    assert!(
        matches!(duplicate, Err(StorageError::Conflict)),
        "{duplicate:?}"
    );
    let iris = user(&test, "Iris").await;
    for typed in ["Iris", "iris", "IRIS"] {
        let found = test
            .db
            .find_credentials(&Username::parse(typed).unwrap())
            .await
            .unwrap();
        assert_eq!(found.map(|c| c.user.id), Some(iris.id), "{typed}");
    }
}

/// On PostgreSQL, one user's writes on different connections take no lock from each
/// other (each commit raises a revision counter of its own connection's): while a
/// transaction that renamed one of alice's conversations is still open, a write to
/// another of hers completes. Each counts in her revision once committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn postgres_writes_by_one_user_on_two_connections_do_not_wait_for_each_other() {
    use diesel::{Connection, PgConnection, connection::SimpleConnection};

    let test = TestDb::postgres();
    let alice = user(&test, "alice").await;
    let first = conversation(&test, &alice, "first", 0).await;
    let second = conversation(&test, &alice, "second", 0).await;
    let mut last = test.db.revision(alice.id).await.unwrap();
    let mut open = PgConnection::establish(test.url()).unwrap();
    open.batch_execute(&format!(
        "BEGIN; UPDATE conversations SET name = 'open' WHERE id = {}",
        first.id.get()
    ))
    .unwrap();

    let name = ConversationName::parse("not kept waiting").unwrap();
    let renamed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        test.db
            .rename_conversation(alice.id, second.id, name, at(1)),
    )
    .await
    .expect("a write of alice's waited for another of her transactions");
    assert!(renamed.unwrap().is_some());
    rose(&test, alice.id, &mut last, "the second rename, committed").await;
    open.batch_execute("COMMIT").unwrap();
    rose(
        &test,
        alice.id,
        &mut last,
        "the first rename, committed later",
    )
    .await;
}
