//! `GET /api/conversations` issues as many SQL statements for a user with fifty
//! conversations as for a user with one: no query per conversation. Its own test
//! binary, because diesel's query counter is process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod support;

use chatbot_persistence::testing::{TestDb, statements_started};
use serde_json::json;

use support::{Client, Server, settings};

/// A logged-in user with `conversations` conversations of two messages each.
async fn user_with(server: &Server, name: &str, conversations: usize) -> Client {
    let mut client = server.client();
    client.sign_up_and_log_in(name).await;
    for i in 0..conversations {
        let id = client.create_conversation(&format!("chat {i}")).await;
        let path = format!("/api/conversations/{id}/messages");
        let sent = client.post(&path, json!({"text": "hello"})).await;
        assert_eq!(sent.status, 201);
    }
    client
}

/// Statements issued while `client` gets `path`, which lists `expected` conversations.
async fn statements_for(client: &mut Client, path: &str, expected: usize) -> usize {
    let before = statements_started();
    let listed = client.get(path).await;
    let after = statements_started();
    assert_eq!(listed.status, 200);
    let conversations = listed.body.get("conversations").unwrap_or(&listed.body);
    assert_eq!(conversations.as_array().unwrap().len(), expected);
    after - before
}

async fn check(db: TestDb) {
    let server = Server::start(settings(&db, &[])).await;
    let mut one = user_with(&server, "one", 1).await;
    let mut fifty = user_with(&server, "fifty", 50).await;
    for path in [
        "/api/conversations",
        "/api/conversations?limit=100&include=messages",
    ] {
        let for_one = statements_for(&mut one, path, 1).await;
        let for_fifty = statements_for(&mut fifty, path, 50).await;
        assert!(for_one > 0, "the counter sees the statements");
        assert_eq!(for_one, for_fifty, "{path}: 1 vs 50 conversations");
    }
    server.stop().await;
}

/// One test at a time: the statement counter is the whole process's.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counted(db: fn() -> TestDb) {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    statements_started();
    actix_web::rt::System::new().block_on(check(db()));
}

#[test]
fn listing_costs_the_same_statements_for_one_conversation_as_for_fifty_on_sqlite() {
    counted(TestDb::sqlite);
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn listing_costs_the_same_statements_for_one_conversation_as_for_fifty_on_postgres() {
    counted(TestDb::postgres);
}
