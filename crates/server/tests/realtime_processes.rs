//! Real time across instances (SPEC §10): two processes on one PostgreSQL database,
//! a WebSocket on one, the changes made on the other; through a lost connection to
//! the database, and a logout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::time::Duration;

use chatbot_persistence::testing::TestDb;
use process::Chatbot;
use serde_json::json;
use support::{Closed, Socket};

/// Waits for the frames of one exchange in `conversation` and checks them: both
/// messages, the deltas in order, the reply as stored.
async fn sees_exchange(socket: &mut Socket, conversation: i64) {
    let said = socket.next().await;
    assert_eq!(
        (said["type"].as_str(), said["message"]["sender"].as_str()),
        (Some("message.created"), Some("user")),
        "{said}"
    );
    assert_eq!(said["conversation_id"], conversation);
    let reply = socket.next().await;
    assert_eq!(reply["message"]["status"], "streaming", "{reply}");
    let (mut seq, mut text) = (0, String::new());
    loop {
        let frame = socket.next().await;
        if frame["type"] == "message.updated" {
            assert_eq!(frame["message"]["text"], text.as_str());
            assert!(seq > 1);
            return;
        }
        seq += 1;
        assert_eq!(
            (frame["type"].as_str(), frame["seq"].as_i64()),
            (Some("message.delta"), Some(seq)),
            "{frame}"
        );
        text.push_str(frame["text"].as_str().unwrap());
    }
}

#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
#[actix_web::test]
async fn a_socket_on_one_instance_sees_what_happens_on_another_also_after_the_database_link_breaks()
{
    let db = TestDb::postgres();
    let settings = [("CHATBOT__BOT__SIMULATED_DELAY_MS", "10")];
    let one = Chatbot::start(&db, &settings);
    let two = Chatbot::start(&db, &settings);
    let mut on_one = one.client();
    on_one.sign_up_and_log_in("alice").await;
    let mut on_two = two.client();
    on_two.cookie.clone_from(&on_one.cookie);
    let mut bob = two.client();
    bob.sign_up_and_log_in("bob").await;
    let mut bobs = bob.socket().await;
    let mut socket = on_two.socket().await;

    let id = on_one.create_conversation("chat").await;
    let created = socket.next().await;
    assert_eq!(
        (
            created["type"].as_str(),
            created["conversation"]["id"].as_i64()
        ),
        (Some("conversation.created"), Some(id))
    );
    let sent = on_one
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "hello from one"}),
        )
        .await;
    assert_eq!(sent.status, 201);
    sees_exchange(&mut socket, id).await;

    // The database drops every events connection (as a restart does): the socket
    // learns it may have missed events, and a new one hears again.
    db.count(
        "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE application_name LIKE 'chatbot-events%'",
    );
    let (closed, _) = socket.closing().await;
    assert_eq!(
        closed,
        Closed::With(
            4008,
            "events were missed: reload through the API".to_owned()
        )
    );
    let mut heard = false;
    for _ in 0..50 {
        let mut again = on_two.socket().await;
        on_one
            .put(
                &format!("/api/conversations/{id}"),
                json!({"name": "renamed"}),
            )
            .await;
        let frame = actix_web::rt::time::timeout(Duration::from_millis(500), again.next()).await;
        if let Ok(frame) = frame {
            assert_eq!(
                (
                    frame["type"].as_str(),
                    frame["conversation"]["name"].as_str()
                ),
                (Some("conversation.updated"), Some("renamed"))
            );
            socket = again;
            heard = true;
            break;
        }
    }
    assert!(heard, "events flow again once the connections are back");

    // A logout on one instance closes the session's socket on the other.
    assert_eq!(on_one.get("/api/logout").await.status, 200);
    assert_eq!(
        socket.closing().await.0,
        Closed::With(4001, "the session ended: log in again".to_owned())
    );
    // Bob's socket heard none of Alice's events before it too was told it missed
    // some when the link broke; a new one hears his own.
    let (closed, texts) = bobs.closing().await;
    assert_eq!(
        (closed, texts),
        (
            Closed::With(
                4008,
                "events were missed: reload through the API".to_owned()
            ),
            0
        )
    );
    let mut bobs = bob.socket().await;
    bob.create_conversation("bob's").await;
    assert_eq!(bobs.next().await["conversation"]["name"], "bob's");
}
