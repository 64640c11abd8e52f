//! Listing conversations with their messages costs the same number of queries for one
//! conversation as for fifty, whole or by the page. Its own test binary: the query
//! counter is process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chatbot_domain::ports::{ConversationRepository, MessageRepository, UserRepository};
use chatbot_domain::{
    ConversationCursor, ConversationName, DisplayName, MessageStatus, NewConversation, NewMessage,
    NewUser, PasswordHash, Sender, Timestamp, UserId, Username, Window,
};
use chatbot_persistence::testing::{TestDb, statements_started};

async fn user_with_conversations(db: &TestDb, name: &str, conversations: usize) -> UserId {
    let now = Timestamp::from_unix_millis(1_795_586_834_123).unwrap();
    let owner = db
        .db
        .insert_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            email: None,
            password_hash: PasswordHash::new("h"),
            created_at: now,
        })
        .await
        .unwrap()
        .id;
    for i in 0..conversations {
        let chat = db
            .db
            .insert_conversation(
                NewConversation {
                    owner,
                    name: ConversationName::parse(&format!("c{i}")).unwrap(),
                    created_at: now,
                },
                u32::MAX,
            )
            .await
            .unwrap()
            .expect("below the most conversations");
        // A message and the bot's reply, stored as sending a message stores them.
        let message = NewMessage {
            sender: Sender::User,
            text: "m".into(),
            status: MessageStatus::Complete,
            created_at: now,
        };
        let begun = db
            .db
            .begin_exchange(owner, chat.id, message)
            .await
            .unwrap()
            .unwrap();
        db.db
            .finish_reply(begun.reply.id, "r".into(), MessageStatus::Complete)
            .await
            .unwrap()
            .unwrap();
    }
    owner
}

async fn queries_to_list(
    db: &TestDb,
    owner: UserId,
    window: Window<ConversationCursor>,
    expected: usize,
) -> usize {
    let before = statements_started();
    let listed = db
        .db
        .list_conversations_with_messages(owner, window)
        .await
        .unwrap();
    assert_eq!(listed.len(), expected);
    assert!(listed.iter().all(|c| c.messages.len() == 2));
    statements_started() - before
}

async fn check(db: TestDb) {
    let one = user_with_conversations(&db, "one", 1).await;
    let fifty = user_with_conversations(&db, "fifty", 50).await;
    let for_one = queries_to_list(&db, one, Window::ALL, 1).await;
    let for_fifty = queries_to_list(&db, fifty, Window::ALL, 50).await;
    assert!(for_one > 0, "the counter sees the queries");
    assert_eq!(for_one, for_fifty, "queries for 1 vs 50 conversations");
    let page = Window {
        before: None,
        limit: Some(40),
    };
    assert_eq!(
        queries_to_list(&db, fifty, page, 40).await,
        for_one,
        "a page of 40"
    );
}

/// One test at a time: the statement counter is the whole process's.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counted(db: fn() -> TestDb) {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    statements_started();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(check(db()));
}

#[test]
fn listing_costs_a_constant_number_of_queries_on_sqlite() {
    counted(TestDb::sqlite);
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn listing_costs_a_constant_number_of_queries_on_postgres() {
    counted(TestDb::postgres);
}
