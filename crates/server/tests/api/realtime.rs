//! Real time over WebSocket (SPEC §10): every socket of a user sees every change to
//! their data, in order, whoever made it; nobody else's; the socket's own commands;
//! and how sockets end.

use std::time::Duration;

use chatbot_openai::testing::{FakeProvider, Reply};
use serde_json::{Value, json};

use crate::support::{Closed, Server, Socket, api_tests, on_fake_model, settings};

/// The frames of one exchange, from the user's message to the stored reply: the
/// types in order, checking that the deltas are numbered from 1 and add up to the
/// reply. Returns the reply as stored.
async fn exchange(socket: &mut Socket, conversation: i64, text: &str) -> Value {
    let said = socket.next().await;
    assert_eq!(said["type"], "message.created", "{said}");
    assert_eq!(said["conversation_id"], conversation);
    assert_eq!(
        (
            said["message"]["sender"].as_str(),
            said["message"]["text"].as_str()
        ),
        (Some("user"), Some(text))
    );
    let reply = socket.next().await;
    assert_eq!(reply["type"], "message.created", "{reply}");
    assert_eq!(reply["message"]["status"], "streaming");
    let id = reply["message"]["id"].clone();
    let mut joined = String::new();
    let mut seq = 0;
    loop {
        let frame = socket.next().await;
        match frame["type"].as_str() {
            Some("message.delta") => {
                seq += 1;
                assert_eq!(frame["seq"], seq, "deltas in order: {frame}");
                assert_eq!(
                    (&frame["message_id"], &frame["conversation_id"]),
                    (&id, &json!(conversation))
                );
                joined.push_str(frame["text"].as_str().unwrap());
            }
            Some("message.updated") => {
                assert_eq!(frame["message"]["id"], id);
                assert_eq!(frame["message"]["status"], "complete");
                assert_eq!(frame["message"]["text"], joined.as_str());
                assert!(seq > 1, "the reply came in deltas");
                return frame["message"].clone();
            }
            _ => panic!("unexpected {frame}"),
        }
    }
}

api_tests! {
    async fn every_socket_of_a_user_sees_messages_sent_by_rest_and_by_a_socket_and_no_one_else_does(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        let mut tab = alice.socket().await;
        let mut phone = alice.socket().await;
        let mut bobs = bob.socket().await;

        let id = alice.create_conversation("chat").await;
        for socket in [&mut tab, &mut phone] {
            let created = socket.next().await;
            assert_eq!(created["type"], "conversation.created");
            assert_eq!((created["conversation"]["id"].as_i64(), created["conversation"]["name"].as_str()), (Some(id), Some("chat")));
        }
        let sent = alice.post(&format!("/api/conversations/{id}/messages"), json!({"text": "by REST"})).await;
        assert_eq!(sent.status, 201);
        for socket in [&mut tab, &mut phone] {
            assert_eq!(exchange(socket, id, "by REST").await, sent.body[1]);
        }

        tab.send(json!({"type": "send", "conversation_id": id, "text": "by socket", "client_id": "c1"})).await;
        let on_phone = exchange(&mut phone, id, "by socket").await;
        assert_eq!(exchange(&mut tab, id, "by socket").await, on_phone);

        alice.put(&format!("/api/conversations/{id}"), json!({"name": "renamed"})).await;
        alice.delete(&format!("/api/conversations/{id}")).await;
        for socket in [&mut tab, &mut phone] {
            let renamed = socket.next().await;
            assert_eq!((renamed["type"].as_str(), renamed["conversation"]["name"].as_str()), (Some("conversation.updated"), Some("renamed")));
            assert_eq!(socket.next().await, json!({"type": "conversation.deleted", "conversation_id": id}));
        }

        // Bob's socket got nothing of Alice's: its first frame is about his own data.
        bob.create_conversation("bob's").await;
        let first = bobs.next().await;
        assert_eq!(first["conversation"]["name"], "bob's", "{first}");
    }

    async fn a_title_reaches_the_sockets_as_a_conversation_update(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut socket = alice.socket().await;
        let created = alice.post("/api/conversations", json!({})).await;
        let id = created.body["id"].as_i64().unwrap();
        socket.next().await;
        socket.send(json!({"type": "send", "conversation_id": id, "text": "hiking in the fjords"})).await;
        exchange(&mut socket, id, "hiking in the fjords").await;
        let titled = socket.next().await;
        assert_eq!(titled["type"], "conversation.updated");
        assert_eq!(titled["conversation"]["name"], "hiking in the fjords");
    }

    async fn refused_commands_answer_an_error_with_the_client_id_and_the_socket_stays_open(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__BOT__SIMULATED_DELAY_MS", "50")])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        let bobs = bob.create_conversation("bob's").await;
        let mut socket = alice.socket().await;
        let id = alice.create_conversation("chat").await;
        assert_eq!(socket.next().await["type"], "conversation.created");

        socket.send(json!({"type": "ping"})).await;
        assert_eq!(socket.next().await, json!({"type": "pong"}));
        let refusals = [
            (json!({"type": "send", "conversation_id": id, "text": "  ", "client_id": "a"}), "validation_failed", Some("a")),
            (json!({"type": "send", "conversation_id": bobs, "text": "hi", "client_id": "b"}), "not_found", Some("b")),
            (json!({"type": "stop", "message_id": 999_999}), "not_found", None),
            (json!({"type": "dance"}), "bad_request", None),
        ];
        for (command, code, client_id) in refusals {
            socket.send(command.clone()).await;
            let refused = socket.next().await;
            assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some(code)), "{command}: {refused}");
            assert!(refused["error"].as_str().unwrap().len() > 5);
            assert_eq!(refused["client_id"].as_str(), client_id, "{refused}");
        }

        // One reply at a time, over the socket too; then stop it from the socket.
        socket.send(json!({"type": "send", "conversation_id": id, "text": "tell me a long story about lighthouses", "client_id": "first"})).await;
        socket.next().await;
        let reply = socket.next().await["message"]["id"].as_i64().unwrap();
        socket.send(json!({"type": "send", "conversation_id": id, "text": "and another", "client_id": "second"})).await;
        loop {
            let frame = socket.next().await;
            if frame["type"] == "error" {
                assert_eq!((frame["code"].as_str(), frame["client_id"].as_str()), (Some("conflict"), Some("second")));
                break;
            }
            assert_eq!(frame["type"], "message.delta", "{frame}");
        }
        socket.send(json!({"type": "stop", "message_id": reply})).await;
        loop {
            let frame = socket.next().await;
            if frame["type"] == "message.updated" {
                assert_eq!(frame["message"]["status"], "interrupted");
                break;
            }
        }
        assert_eq!(bob.get(&format!("/api/conversations/{bobs}/messages")).await.body["messages"], json!([]));
    }

    async fn a_socket_needs_a_session_and_a_trusted_origin_before_the_upgrade(db) {
        let server = Server::start(settings(&db, &[])).await;
        assert_eq!(server.client().socket_from(None).await.err(), Some(401));
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        assert_eq!(alice.socket_from(Some("https://evil.example")).await.err(), Some(403));
        assert!(alice.socket_from(Some("http://localhost:5173")).await.is_ok(), "allow-listed");
        assert!(alice.socket_from(Some(&server.base)).await.is_ok(), "the server's own");
        // Without the upgrade, the refusals are the API's JSON errors.
        server.client().get("/api/ws").await.assert_error(401, "unauthorized");
    }

    async fn logout_closes_that_sessions_sockets_with_4001(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut other_device = server.client();
        other_device.post("/api/login", json!({"username": "alice", "password": "correct horse"})).await;
        let mut socket = alice.socket().await;
        let mut stays = other_device.socket().await;

        assert_eq!(alice.get("/api/logout").await.status, 200);
        assert_eq!(socket.closing().await.0, Closed::With(4001, "the session ended: log in again".to_owned()));
        // The other session's socket stays and goes on hearing.
        stays.send(json!({"type": "ping"})).await;
        assert_eq!(stays.next().await, json!({"type": "pong"}));
    }

    async fn a_revoked_session_and_a_deleted_account_close_their_sockets_with_4001(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut laptop = server.client();
        laptop.sign_up_and_log_in("alice").await;
        let mut phone = server.client();
        phone.post("/api/login", json!({"username": "alice", "password": "correct horse"})).await;
        let mut phone_socket = phone.socket().await;
        let mut laptop_socket = laptop.socket().await;

        let sessions = laptop.get("/api/me/sessions").await.body;
        let phone_id = sessions.as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"].clone();
        assert_eq!(laptop.delete(&format!("/api/me/sessions/{phone_id}")).await.status, 204);
        assert_eq!(phone_socket.closing().await.0, Closed::With(4001, "the session ended: log in again".to_owned()));
        laptop_socket.send(json!({"type": "ping"})).await;
        assert_eq!(laptop_socket.next().await, json!({"type": "pong"}), "the revoking session's stays");

        let deleted = laptop.delete_with("/api/me", json!({"password": "correct horse"})).await;
        assert_eq!(deleted.status, 204);
        assert_eq!(laptop_socket.closing().await.0, Closed::With(4001, "the session ended: log in again".to_owned()));
    }

    async fn a_client_that_does_not_read_is_closed_with_4008_and_holds_up_no_one(db) {
        // About 8 MB of reply in 8,000 deltas: more than a stalled client's connection
        // holds (the kernel buffers up to 4 MiB of a socket's unsent bytes here) and
        // than its inbox of 1,024 events.
        let piece = format!("{} ", "word".repeat(250));
        let provider = FakeProvider::start([Reply::pieces(vec![piece.as_str(); 8_000])]).await;
        let server = Server::start(on_fake_model(&db, &provider.base_url(), &[("CHATBOT__REALTIME__SEND_TIMEOUT_SECONDS", "1"),])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("chat").await;
        let stalled = alice.stalled_socket().await;
        let mut reading = alice.socket().await;

        reading.send(json!({"type": "send", "conversation_id": id, "text": "a lot"})).await;
        let (mut deltas, mut updated) = (0, None);
        while updated.is_none() {
            let frame = reading.next().await;
            match frame["type"].as_str() {
                Some("message.delta") => deltas += 1,
                Some("message.updated") => updated = Some(frame),
                _ => {}
            }
        }
        assert_eq!(deltas, 8_000, "the reading socket got every delta");
        assert_eq!(updated.unwrap()["message"]["status"], "complete");
        let (closed, texts) = stalled.read_to_close().await;
        assert_eq!(closed, Closed::With(4008, "events were missed: reload through the API".to_owned()));
        assert!(texts < 8_000, "it was closed before the end: {texts} frames");
    }

    async fn a_user_holds_at_most_max_sockets_per_user(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__REALTIME__MAX_SOCKETS_PER_USER", "2")])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let first = alice.socket().await;
        let _second = alice.socket().await;
        let mut third = alice.socket().await;
        let (closed, _) = third.closing().await;
        let Closed::With(code, reason) = closed else { panic!("{closed:?}") };
        assert_eq!(code, 1008);
        assert!(reason.contains("at most 2"), "{reason}");
        drop(first);
        // The closed socket's place frees once the server sees it gone.
        let mut freed = None;
        for _ in 0..50 {
            let mut next = alice.socket().await;
            let first = actix_web::rt::time::timeout(Duration::from_millis(100), next.frame()).await;
            if first.is_err() {
                // Nothing within 100 ms: not refused.
                freed = Some(next);
                break;
            }
        }
        let mut freed = freed.expect("a place freed");
        freed.send(json!({"type": "ping"})).await;
        assert_eq!(freed.next().await, json!({"type": "pong"}));
    }

    async fn an_idle_socket_is_pinged_and_one_that_never_answers_is_dropped(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__REALTIME__PING_INTERVAL_SECONDS", "1")])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut answering = alice.socket().await;
        let mut silent = alice.socket().await;
        let mut pings = 0;
        let started = std::time::Instant::now();
        let silence = async {
            loop {
                match silent.frame().await {
                    Some(awc::ws::Frame::Ping(_)) => pings += 1,
                    Some(awc::ws::Frame::Close(_)) | None => break started.elapsed(),
                    Some(_) => {}
                }
            }
        };
        // Meanwhile the other socket keeps talking (and `next` answers its pings).
        let talk = async {
            loop {
                answering.send(json!({"type": "ping"})).await;
                assert_eq!(answering.next().await, json!({"type": "pong"}));
                actix_web::rt::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let ended = match futures_util::future::select(std::pin::pin!(silence), std::pin::pin!(talk)).await {
            futures_util::future::Either::Left((ended, _)) => ended,
            futures_util::future::Either::Right(((), _)) => unreachable!("talking never ends"),
        };
        assert!(pings >= 1, "it was pinged");
        assert!(ended < Duration::from_secs(10), "dropped after {ended:?}");
        // The socket that answers (`next` answers pings) is still there.
        answering.send(json!({"type": "ping"})).await;
        assert_eq!(answering.next().await, json!({"type": "pong"}));
    }
}
