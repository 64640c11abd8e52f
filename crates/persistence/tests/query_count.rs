//! Listing conversations with their messages costs the same number of queries for one
//! conversation as for thirty. Its own test binary: the query counter is process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use chatbot_domain::ports::{ConversationRepository, MessageRepository, UserRepository};
use chatbot_domain::{
    ConversationName, NewConversation, NewMessage, NewUser, PasswordHash, Sender, Timestamp,
    UserId, Username,
};
use chatbot_persistence::testing::TestDb;
use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};

static QUERIES: AtomicUsize = AtomicUsize::new(0);

struct CountQueries;

impl Instrumentation for CountQueries {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            QUERIES.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn user_with_conversations(db: &TestDb, name: &str, conversations: usize) -> UserId {
    let now = Timestamp::now();
    let owner = db
        .db
        .insert_user(NewUser {
            username: Username::parse(name).unwrap(),
            password_hash: PasswordHash::new("h"),
            created_at: now,
        })
        .await
        .unwrap()
        .id;
    for i in 0..conversations {
        let chat = db
            .db
            .insert_conversation(NewConversation {
                owner,
                name: ConversationName::parse(&format!("c{i}")).unwrap(),
                created_at: now,
            })
            .await
            .unwrap();
        for sender in [Sender::User, Sender::Bot] {
            let message = NewMessage {
                sender,
                text: "m".into(),
                created_at: now,
            };
            db.db.append_message(owner, chat.id, message).await.unwrap();
        }
    }
    owner
}

async fn queries_to_list(db: &TestDb, owner: UserId, expected: usize) -> usize {
    let before = QUERIES.load(Ordering::SeqCst);
    let listed = db.db.list_conversations_with_messages(owner).await.unwrap();
    assert_eq!(listed.len(), expected);
    QUERIES.load(Ordering::SeqCst) - before
}

async fn check(db: TestDb) {
    let one = user_with_conversations(&db, "one", 1).await;
    let thirty = user_with_conversations(&db, "thirty", 30).await;
    let for_one = queries_to_list(&db, one, 1).await;
    let for_thirty = queries_to_list(&db, thirty, 30).await;
    assert!(for_one > 0, "the counter sees the queries");
    assert_eq!(for_one, for_thirty, "queries for 1 vs 30 conversations");
}

#[test]
fn listing_costs_a_constant_number_of_queries() {
    set_default_instrumentation(|| Some(Box::new(CountQueries))).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(check(TestDb::sqlite()));
    if let Some(db) = TestDb::postgres() {
        runtime.block_on(check(db));
    }
}
