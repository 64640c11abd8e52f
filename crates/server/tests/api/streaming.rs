//! Replies streamed as server-sent events (SPEC §9): the events of a send, following a
//! reply again from where the client left off, stopping it, and one reply at a time.

use std::time::Duration;

use awc::http::Method;
use chatbot_openai::testing::{FakeProvider, Reply, Step};
use serde_json::{Value, json};

use crate::support::{Client, Event, Server, api_tests, joined_deltas, on_fake_model, settings};

/// A message whose simulated reply is about 30 words long.
const LONG: &str = "please tell me everything about the long history of the \
    lighthouses along the northern coast and their keepers";

/// A server whose simulated bot pauses `delay_ms` between words.
async fn paced(db: &chatbot_persistence::testing::TestDb, delay_ms: &str) -> Server {
    Server::start(settings(
        db,
        &[("CHATBOT__BOT__SIMULATED_DELAY_MS", delay_ms)],
    ))
    .await
}

async fn alice_with_a_conversation(server: &Server) -> (Client, i64) {
    let mut alice = server.client();
    alice.sign_up_and_log_in("alice").await;
    let id = alice.create_conversation("chat").await;
    (alice, id)
}

/// The conversation's stored messages.
async fn stored(client: &mut Client, conversation: i64) -> Vec<Value> {
    let page = client
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["messages"].as_array().unwrap().clone()
}

/// The stored bot message `id` once it is no longer streaming.
async fn finished(client: &mut Client, conversation: i64, id: i64) -> Value {
    for _ in 0..200 {
        let messages = stored(client, conversation).await;
        let message = messages.iter().find(|m| m["id"] == id).unwrap().clone();
        if message["status"] != "streaming" {
            return message;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("reply {id} is still streaming after 10 s");
}

fn names(events: &[Event]) -> Vec<&str> {
    let mut names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    names.dedup();
    names
}

api_tests! {
    async fn a_streamed_send_answers_the_message_the_reply_its_deltas_then_done(db) {
        let server = Server::start(settings(&db, &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;

        let events = alice.stream_message(id, "Hello there, bot").await;
        assert_eq!(
            events.headers.get("content-type").unwrap(),
            "text/event-stream"
        );
        let events = events.rest().await;
        assert_eq!(names(&events), ["message", "reply", "delta", "done"], "{events:?}");
        let (message, reply, done) = (&events[0].data, &events[1].data, &events.last().unwrap().data);
        assert_eq!((message["sender"].as_str(), message["text"].as_str()), (Some("user"), Some("Hello there, bot")));
        assert_eq!(message["status"], "complete");
        assert_eq!(reply["sender"], "bot");
        assert_eq!(reply["text"], "");
        assert_eq!(reply["status"], "streaming");
        assert!(reply["id"].as_i64().unwrap() > message["id"].as_i64().unwrap());
        for delta in events.iter().filter(|e| e.name == "delta") {
            assert_eq!(delta.data["message_id"], reply["id"]);
        }
        let text = joined_deltas(&events, 1);
        assert!(text.starts_with("Hello! You said"), "{text}");
        assert_eq!(done["text"], text.as_str());
        assert_eq!(done["status"], "complete");
        assert_eq!(done["id"], reply["id"]);

        let messages = stored(&mut alice, id).await;
        assert_eq!(messages.len(), 2);
        assert_eq!(&messages[1], done, "the stored reply is the one `done` carried");
    }

    async fn without_the_accept_header_the_send_answers_json_as_before(db) {
        let server = Server::start(settings(&db, &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let path = format!("/api/conversations/{id}/messages");
        for accept in [None, Some("application/json"), Some("*/*")] {
            let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
            let sent = alice
                .send(Method::POST, &path, Some(json!({"text": "hi"}).to_string()), &headers)
                .await;
            assert_eq!(sent.status, 201, "{accept:?}: {sent:?}");
            assert_eq!(sent.body[0]["sender"], "user");
            assert_eq!(sent.body[1]["sender"], "bot");
            assert_eq!(sent.body[1]["status"], "complete");
        }
    }

    async fn errors_before_the_stream_starts_are_json(db) {
        let server = Server::start(settings(&db, &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        let post = |text: &str| (Method::POST, Some(json!({ "text": text })));
        let path = format!("/api/conversations/{id}/messages");

        let (method, body) = post("hi");
        let foreign = bob.events(method, &path, body, &[]).await.err().unwrap();
        foreign.assert_error(404, "not_found");
        let (method, body) = post("   ");
        let empty = alice.events(method, &path, body, &[]).await.err().unwrap();
        empty.assert_error(400, "validation_failed");
        let (method, body) = post("hi");
        let anonymous = server.client().events(method, &path, body, &[]).await.err().unwrap();
        anonymous.assert_error(401, "unauthorized");
        assert!(stored(&mut alice, id).await.is_empty(), "nothing was stored");
    }

    async fn a_reader_that_left_after_two_deltas_resumes_without_a_gap_or_a_repeat(db) {
        let server = paced(&db, "40").await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;

        let mut events = alice.stream_message(id, LONG).await;
        events.expect("message").await;
        let reply = events.expect("reply").await.data["id"].as_i64().unwrap();
        let first = events.expect("delta").await;
        let second = events.expect("delta").await;
        assert_eq!((first.id, second.id), (Some(1), Some(2)));
        drop(events);

        let rest = alice.follow(id, reply, Some(2)).await.unwrap().rest().await;
        assert_eq!(names(&rest), ["delta", "done"], "no `reply` when resuming: {rest:?}");
        let text = format!(
            "{}{}{}",
            first.data["text"].as_str().unwrap(),
            second.data["text"].as_str().unwrap(),
            joined_deltas(&rest, 3)
        );
        let done = &rest.last().unwrap().data;
        assert_eq!(done["text"], text.as_str());
        assert_eq!(done["status"], "complete");
        assert_eq!(finished(&mut alice, id, reply).await["text"], text.as_str());
    }

    async fn a_reply_goes_on_when_its_reader_leaves_and_its_events_replay_from_the_start(db) {
        let server = paced(&db, "20").await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut events = alice.stream_message(id, LONG).await;
        events.expect("message").await;
        let reply = events.expect("reply").await.data["id"].as_i64().unwrap();
        drop(events);

        let whole = finished(&mut alice, id, reply).await;
        assert_eq!(whole["status"], "complete", "the reply was written to its end");
        // Finished: `done` at once, whatever the reader had.
        for after in [None, Some(1)] {
            let replay = alice.follow(id, reply, after).await.unwrap().rest().await;
            assert_eq!(names(&replay), ["done"], "{replay:?}");
            assert_eq!(replay[0].data, whole);
        }
    }

    async fn following_from_the_start_replays_the_reply_and_every_delta_so_far(db) {
        let server = paced(&db, "40").await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut events = alice.stream_message(id, LONG).await;
        events.expect("message").await;
        let reply = events.expect("reply").await;
        let id_of_reply = reply.data["id"].as_i64().unwrap();
        events.expect("delta").await;
        events.expect("delta").await;

        let again = alice.follow(id, id_of_reply, None).await.unwrap().rest().await;
        assert_eq!(names(&again), ["reply", "delta", "done"], "{again:?}");
        assert_eq!(again[0].data, reply.data, "the reply as created");
        let text = joined_deltas(&again, 1);
        assert_eq!(again.last().unwrap().data["text"], text.as_str());
        let original = events.rest().await;
        assert_eq!(original.last().unwrap().data["text"], text.as_str());
    }

    async fn following_or_stopping_what_is_not_a_message_of_yours_is_not_found(db) {
        let server = Server::start(settings(&db, &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let sent = alice
            .post(&format!("/api/conversations/{id}/messages"), json!({"text": "hi"}))
            .await;
        let (mine, reply) = (sent.body[0]["id"].as_i64().unwrap(), sent.body[1]["id"].as_i64().unwrap());
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        let bobs = bob.create_conversation("bob's").await;

        // A user's message is finished from the start: `done` at once; stopping it
        // changes nothing.
        let followed = alice.follow(id, mine, None).await.unwrap().rest().await;
        assert_eq!((followed.len(), followed[0].name.as_str()), (1, "done"));
        assert_eq!(followed[0].data, sent.body[0]);
        alice.follow(id, reply + 100, None).await.err().unwrap().assert_error(404, "not_found");
        alice.follow(bobs, reply, None).await.err().unwrap().assert_error(404, "not_found");
        bob.follow(id, reply, None).await.err().unwrap().assert_error(404, "not_found");
        let stop = |conversation: i64, message: i64| {
            format!("/api/conversations/{conversation}/messages/{message}/stop")
        };
        bob.post(&stop(id, reply), json!({})).await.assert_error(404, "not_found");
        let stopped = alice.post(&stop(id, mine), json!({})).await;
        assert_eq!((stopped.status.as_u16(), &stopped.body), (200, &sent.body[0]));
        let garbled = alice
            .events(
                Method::GET,
                &format!("/api/conversations/{id}/messages/{reply}/events"),
                None,
                &[("Last-Event-ID", "two")],
            )
            .await
            .err()
            .unwrap();
        garbled.assert_error(400, "bad_request");
    }

    async fn a_second_message_while_a_reply_is_written_is_a_conflict_and_stores_nothing(db) {
        let server = paced(&db, "40").await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut events = alice.stream_message(id, LONG).await;
        events.expect("message").await;
        let reply = events.expect("reply").await.data["id"].as_i64().unwrap();

        let path = format!("/api/conversations/{id}/messages");
        alice.post(&path, json!({"text": "me too"})).await.assert_error(409, "conflict");
        alice
            .events(Method::POST, &path, Some(json!({"text": "me too"})), &[])
            .await
            .err()
            .unwrap()
            .assert_error(409, "conflict");
        assert_eq!(stored(&mut alice, id).await.len(), 2, "only the first exchange");
        // Another conversation is not held up.
        let other = alice.create_conversation("other").await;
        assert_eq!(alice.post(&format!("/api/conversations/{other}/messages"), json!({"text": "hi"})).await.status, 201);

        let stopped = alice
            .post(&format!("/api/conversations/{id}/messages/{reply}/stop"), json!({}))
            .await;
        assert_eq!(stopped.status, 200, "{stopped:?}");
        assert_eq!(alice.post(&path, json!({"text": "now?"})).await.status, 201);
    }

    async fn stop_keeps_what_was_written_as_interrupted_and_twice_changes_nothing(db) {
        let server = paced(&db, "40").await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut events = alice.stream_message(id, LONG).await;
        events.expect("message").await;
        let reply = events.expect("reply").await.data["id"].as_i64().unwrap();
        events.expect("delta").await;

        let path = format!("/api/conversations/{id}/messages/{reply}/stop");
        let stopped = alice.post(&path, json!({})).await;
        assert_eq!(stopped.status, 200, "{stopped:?}");
        assert_eq!(stopped.body["status"], "interrupted");
        let rest = events.rest().await;
        let done = &rest.last().unwrap().data;
        assert_eq!(rest.last().unwrap().name, "done");
        assert_eq!(done, &stopped.body, "the stream ends with the stopped reply");
        assert_eq!(stored(&mut alice, id).await[1], stopped.body);

        let again = alice.post(&path, json!({})).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, stopped.body, "a finished reply is returned as it is");
    }

    async fn stop_cancels_the_model_request_and_keeps_the_text_that_came(db) {
        let provider = FakeProvider::start([
            Reply::sse([Step::content("The first "), Step::content("words"), Step::pause(30_000)]),
        ])
        .await;
        let server = Server::start(on_fake_model(&db, &provider.base_url(), &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut events = alice.stream_message(id, "tell me").await;
        events.expect("message").await;
        let reply = events.expect("reply").await.data["id"].as_i64().unwrap();
        events.expect("delta").await;
        events.expect("delta").await;

        let stopped = alice
            .post(&format!("/api/conversations/{id}/messages/{reply}/stop"), json!({}))
            .await;
        assert_eq!(stopped.status, 200, "{stopped:?}");
        assert_eq!(stopped.body["text"], "The first words");
        assert_eq!(stopped.body["status"], "interrupted");
        let mut hung_up = false;
        for _ in 0..100 {
            hung_up = provider.hung_up(0);
            if hung_up {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(hung_up, "the provider saw its connection closed");
    }

    async fn keep_alive_comments_flow_while_the_model_thinks(db) {
        let provider = FakeProvider::start([
            Reply::sse([Step::keep_alive(), Step::pause(2_500), Step::content("Finally."), Step::finish("stop"), Step::done()]),
        ])
        .await;
        let server = Server::start(on_fake_model(&db, &provider.base_url(), &[("CHATBOT__STREAMING__KEEP_ALIVE_SECONDS", "1"),])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut events = alice.stream_message(id, "think hard").await;
        events.expect("message").await;
        events.expect("reply").await;
        let delta = events.expect("delta").await;
        assert!(events.keep_alives >= 2, "keep-alives before the first token: {}", events.keep_alives);
        assert_eq!(delta.data["text"], "Finally.");
        assert_eq!(events.expect("done").await.data["text"], "Finally.");
    }

    async fn a_model_failure_mid_stream_ends_with_an_error_event_and_a_failed_reply(db) {
        let provider = FakeProvider::start([
            Reply::sse([Step::content("Half an "), Step::content("answer"), Step::error()]),
        ])
        .await;
        let server = Server::start(on_fake_model(&db, &provider.base_url(), &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let events = alice.stream_message(id, "go").await.rest().await;
        assert_eq!(names(&events), ["message", "reply", "delta", "error"], "{events:?}");
        let error = &events.last().unwrap().data;
        assert_eq!(error["code"], "bot_unavailable");
        assert!(error["error"].as_str().unwrap().len() > 5);
        assert!(!error.to_string().contains(FakeProvider::ERROR_BODY));
        let messages = stored(&mut alice, id).await;
        assert_eq!(messages[1]["text"], "Half an answer");
        assert_eq!(messages[1]["status"], "failed");
        // Followed afterwards: the error at once.
        let reply = messages[1]["id"].as_i64().unwrap();
        let replay = alice.follow(id, reply, None).await.unwrap().rest().await;
        assert_eq!(names(&replay), ["error"]);
    }

    async fn a_reader_that_does_not_read_holds_up_neither_the_reply_nor_other_readers(db) {
        // About 2 MB of reply, far more than the socket buffers between the server and
        // a client that does not read, then a pause before its last word.
        let piece = format!("{} ", "word".repeat(100));
        let mut steps: Vec<Step> = (0..5_000).map(|_| Step::content(&piece)).collect();
        steps.extend([Step::pause(1_500), Step::content("end"), Step::finish("stop"), Step::done()]);
        let provider = FakeProvider::start([Reply::sse(steps)]).await;
        let server = Server::start(on_fake_model(&db, &provider.base_url(), &[])).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let mut stalled = alice.stream_message(id, "a lot, please").await;
        stalled.expect("message").await;
        let reply = stalled.expect("reply").await.data["id"].as_i64().unwrap();

        // While it does not read, another reader follows the reply live to its end.
        let mut other = alice.follow(id, reply, None).await.unwrap();
        other.expect("reply").await;
        let mut live = String::new();
        for seq in 1..=5_000 {
            let delta = other.expect("delta").await;
            assert_eq!(delta.id, Some(seq));
            live.push_str(delta.data["text"].as_str().unwrap());
        }
        let replies = stored(&mut alice, id).await;
        assert_eq!(replies[1]["status"], "streaming", "followed live, before the end");
        let rest = other.rest().await;
        live.push_str(&joined_deltas(&rest, 5_001));
        let whole = finished(&mut alice, id, reply).await;
        assert_eq!(whole["status"], "complete");
        assert_eq!(whole["text"], live.as_str());
        assert_eq!(rest.last().unwrap().data, whole);

        // The stalled reader still gets everything, in order.
        let late = stalled.rest().await;
        assert_eq!(joined_deltas(&late, 1), live);
        assert_eq!(late.last().unwrap().data, whole);
    }
}
