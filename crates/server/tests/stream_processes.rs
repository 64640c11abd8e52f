//! Streamed replies across processes (SPEC §9): followed and stopped from another
//! instance on the same database, kept when the writing process is killed, finished
//! (or kept as interrupted) when it is stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::time::Duration;

use chatbot_openai::testing::{FakeProvider, Reply, Step};
use chatbot_persistence::testing::TestDb;
use process::{Chatbot, eventually};
use serde_json::{Value, json};
use support::{Client, joined_deltas};

/// The settings of a server whose bot is the fake `provider`.
fn on_model(provider: &FakeProvider) -> Vec<(&'static str, String)> {
    vec![
        ("CHATBOT__BOT__PROVIDER", "openai".to_owned()),
        ("CHATBOT__BOT__BASE_URL", provider.base_url()),
        ("CHATBOT__BOT__MODEL", "fake-model".to_owned()),
    ]
}

fn borrowed<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A reply of `words` pieces, `pause_ms` apart, that ends properly.
fn slow_reply(words: usize, pause_ms: u64) -> Reply {
    let mut steps = Vec::new();
    for n in 0..words {
        steps.push(Step::content(&format!("w{n} ")));
        steps.push(Step::pause(pause_ms));
    }
    steps.extend([Step::finish("stop"), Step::done()]);
    Reply::sse(steps)
}

async fn messages(client: &mut Client, conversation: i64) -> Vec<Value> {
    let page = client
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["messages"].as_array().unwrap().clone()
}

async fn logged_in_with_a_conversation(server: &Chatbot) -> (Client, i64) {
    let mut alice = server.client();
    alice.sign_up_and_log_in("alice").await;
    let id = alice.create_conversation("chat").await;
    (alice, id)
}

#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
#[actix_web::test]
async fn a_reply_written_on_one_instance_is_followed_and_stopped_on_another() {
    let db = TestDb::postgres();
    let provider = FakeProvider::start([slow_reply(100, 100)]).await;
    let settings = on_model(&provider);
    let writer = Chatbot::start(&db, &borrowed(&settings));
    let other = Chatbot::start(&db, &borrowed(&settings));
    let (mut on_writer, id) = logged_in_with_a_conversation(&writer).await;
    let mut on_other = other.client();
    on_other.cookie.clone_from(&on_writer.cookie);

    let mut live = on_writer.stream_message(id, "go on").await;
    live.expect("message").await;
    let reply = live.expect("reply").await.data["id"].as_i64().unwrap();
    let first = live.expect("delta").await;
    let second = live.expect("delta").await;

    // The other instance resumes after delta 2 and sees the next ones as they come.
    let mut resumed = on_other.follow(id, reply, Some(2)).await.unwrap();
    let third = resumed.expect("delta").await;
    assert_eq!(third.id, Some(3));
    assert_eq!(third.data["text"], "w2 ");
    let fourth = resumed.expect("delta").await;
    assert_eq!(
        (fourth.id, fourth.data["text"].as_str()),
        (Some(4), Some("w3 "))
    );

    // And stops it: the writing instance cancels the model's request.
    let stopped = on_other
        .post(
            &format!("/api/conversations/{id}/messages/{reply}/stop"),
            json!({}),
        )
        .await;
    assert_eq!(stopped.status, 200, "{stopped:?}");
    assert_eq!(stopped.body["status"], "interrupted");
    let text = stopped.body["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("w0 w1 w2 w3 "), "{text}");
    assert!(
        eventually(Duration::from_secs(5), || provider.hung_up(0)).await,
        "the model's connection was closed"
    );

    // Every reader ends with the stopped reply; what the resumed reader was sent,
    // after the two deltas it had, is exactly the stored text.
    let mut rest = vec![third, fourth];
    rest.extend(resumed.rest().await);
    assert_eq!(rest.last().unwrap().name, "done");
    assert_eq!(rest.last().unwrap().data, stopped.body);
    let resumed_text = format!(
        "{}{}{}",
        first.data["text"].as_str().unwrap(),
        second.data["text"].as_str().unwrap(),
        joined_deltas(&rest, 3)
    );
    assert_eq!(resumed_text, text);
    let live_rest = live.rest().await;
    assert_eq!(live_rest.last().unwrap().data["status"], "interrupted");
    assert_eq!(messages(&mut on_writer, id).await[1], stopped.body);
    // The conversation takes messages again, on either instance.
    let next = on_other
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "next"}),
        )
        .await;
    assert_ne!(next.status, 409, "{next:?}");
}

#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
#[actix_web::test]
async fn one_reply_at_a_time_holds_across_instances() {
    let db = TestDb::postgres();
    let settings = [("CHATBOT__BOT__SIMULATED_DELAY_MS", "100")];
    let one = Chatbot::start(&db, &settings);
    let two = Chatbot::start(&db, &settings);
    let (mut on_one, id) = logged_in_with_a_conversation(&one).await;
    let mut on_two = two.client();
    on_two.cookie.clone_from(&on_one.cookie);

    let mut live = on_one
        .stream_message(id, "tell me a long story about lighthouses")
        .await;
    live.expect("message").await;
    live.expect("reply").await;
    on_two
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "me too"}),
        )
        .await
        .assert_error(409, "conflict");
    assert_eq!(messages(&mut on_two, id).await.len(), 2);
}

async fn killed_mid_reply_then_restarted(db: &TestDb) {
    let settings = [
        ("CHATBOT__BOT__SIMULATED_DELAY_MS", "100"),
        ("CHATBOT__STREAMING__STALE_AFTER_SECONDS", "1"),
    ];
    let writer = Chatbot::start(db, &settings);
    let (mut alice, id) = logged_in_with_a_conversation(&writer).await;
    let mut live = alice
        .stream_message(
            id,
            "tell me a long story about the lighthouses of the north",
        )
        .await;
    let message = live.expect("message").await;
    live.expect("reply").await;
    let mut seen = String::new();
    for _ in 0..5 {
        seen.push_str(live.expect("delta").await.data["text"].as_str().unwrap());
    }
    // Past a checkpoint (at most 200 ms after text), then the process dies.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    writer.signal("KILL");
    drop(live);
    drop(writer);

    let restarted = Chatbot::start(db, &settings);
    let mut again = restarted.client();
    again.cookie.clone_from(&alice.cookie);
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = messages(&mut again, id).await;
        if stored[1]["status"] != "streaming" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored[0], message.data,
        "the acknowledged user message is kept"
    );
    assert_eq!(stored[1]["status"], "interrupted", "{stored:?}");
    let kept = stored[1]["text"].as_str().unwrap();
    // What the last checkpoint held: past what the reader took, short of the end.
    assert!(
        kept.starts_with(&seen),
        "kept {kept:?}, the reader saw {seen:?}"
    );
    assert!(!kept.contains("Tell me more"), "{kept:?}");
    let next = again
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "hello again"}),
        )
        .await;
    assert_eq!(
        next.status, 201,
        "the conversation takes messages: {next:?}"
    );
}

#[actix_web::test]
async fn a_reply_whose_process_was_killed_is_interrupted_after_a_restart_on_sqlite() {
    killed_mid_reply_then_restarted(&TestDb::sqlite()).await;
}

#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
#[actix_web::test]
async fn a_reply_whose_process_was_killed_is_interrupted_after_a_restart_on_postgres() {
    killed_mid_reply_then_restarted(&TestDb::postgres()).await;
}

#[actix_web::test]
async fn sigterm_lets_replies_finish_within_the_grace_then_keeps_the_rest_as_interrupted() {
    let db = TestDb::sqlite();
    let provider = FakeProvider::start([
        slow_reply(5, 200),
        Reply::sse([
            Step::content("never "),
            Step::content("done"),
            Step::pause(60_000),
        ]),
    ])
    .await;
    let mut settings = on_model(&provider);
    settings.push(("CHATBOT__SERVER__SHUTDOWN_TIMEOUT_SECONDS", "3".to_owned()));
    let mut server = Chatbot::start(&db, &borrowed(&settings));
    let (mut alice, quick) = logged_in_with_a_conversation(&server).await;
    let endless = alice.create_conversation("endless").await;

    let mut finishing = alice.stream_message(quick, "short").await;
    finishing.expect("message").await;
    finishing.expect("reply").await;
    finishing.expect("delta").await;
    let mut stuck = alice.stream_message(endless, "long").await;
    stuck.expect("message").await;
    stuck.expect("reply").await;
    stuck.expect("delta").await;
    stuck.expect("delta").await;
    server.signal("TERM");

    let finished = finishing.rest().await;
    let done = &finished.last().unwrap();
    assert_eq!(done.name, "done");
    assert_eq!(done.data["status"], "complete");
    assert_eq!(done.data["text"], "w0 w1 w2 w3 w4 ");
    let cut = stuck.rest().await;
    let done = &cut.last().unwrap();
    assert_eq!(done.name, "done");
    assert_eq!(done.data["status"], "interrupted");
    assert_eq!(done.data["text"], "never done");
    let status = server.exit_within(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        eventually(Duration::from_secs(5), || provider.hung_up(1)).await,
        "the endless request was cancelled"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM messages WHERE status = 'streaming'"),
        0
    );
}
