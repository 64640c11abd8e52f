//! Conversations and messages: the seed's shapes, ordering, ownership, validation.

use serde_json::{Value, json};

use crate::support::{Client, Server, api_tests, settings};

/// Whether `value` is a timestamp like `2026-11-25T06:07:14.123Z`.
fn is_timestamp(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 24 && text.ends_with('Z') && text.as_bytes()[19] == b'.'
}

async fn say(client: &mut Client, conversation: i64, text: &str) -> Value {
    let reply = client
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"text": text}),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body
}

api_tests! {
    async fn no_user_gets_more_conversations_than_allowed(db) {
        let most = [("CHATBOT__LIMITS__MAX_CONVERSATIONS_PER_USER", "2")];
        let server = Server::start(settings(&db, &most)).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let first = alice.create_conversation("one").await;
        alice.create_conversation("two").await;
        let refused = alice.post("/api/conversations", json!({"name": "three"})).await;
        refused.assert_error(409, "conflict");
        assert_eq!(
            refused.body["error"],
            "You have 2 conversations, the most allowed: delete some to start another."
        );
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM conversations"), 2);
        // The most is each user's; deleting one makes room.
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        bob.create_conversation("bob's").await;
        let deleted = alice.send(awc::http::Method::DELETE, &format!("/api/conversations/{first}"), None, &[]).await;
        assert_eq!(deleted.status, 204);
        alice.create_conversation("three").await;
    }

    async fn the_cached_list_changes_after_every_write_use_case(db) {
        // The whole list is rendered once per revision and reused: were a write use
        // case to leave the revision, the next list would be the stale rendering.
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let before = alice.get("/api/conversations").await.body;
        assert_eq!(before, json!([]));
        assert_eq!(alice.get("/api/conversations").await.body, before, "served again");

        let id = alice.create_conversation("first").await;
        let created = alice.get("/api/conversations").await.body;
        assert_eq!(created[0]["name"], "first", "after create: {created}");

        let path = format!("/api/conversations/{id}");
        assert_eq!(alice.put(&path, json!({"name": "renamed"})).await.status, 200);
        let renamed = alice.get("/api/conversations").await.body;
        assert_eq!(renamed[0]["name"], "renamed", "after rename: {renamed}");

        say(&mut alice, id, "hello").await;
        let sent = alice.get("/api/conversations").await.body;
        assert_eq!(sent[0]["messages"].as_array().map(Vec::len), Some(2), "after send: {sent}");

        assert_eq!(alice.delete(&path).await.status, 204);
        let deleted = alice.get("/api/conversations").await.body;
        assert_eq!(deleted, json!([]), "after delete: {deleted}");
    }

    async fn create_rename_list_and_delete(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;

        let created = alice.post("/api/conversations", json!({"name": "  Trip to Oslo  "})).await;
        assert_eq!(created.status, 201);
        let id = created.body["id"].as_i64().unwrap();
        assert_eq!(created.body["name"], "Trip to Oslo", "trimmed");
        assert!(is_timestamp(&created.body["created_at"]), "{created:?}");

        let renamed = alice.put(&format!("/api/conversations/{id}"), json!({"name": "Oslo"})).await;
        assert_eq!(renamed.status, 200);
        assert_eq!((renamed.body["id"].as_i64(), renamed.body["name"].as_str()), (Some(id), Some("Oslo")));

        let listed = alice.get("/api/conversations").await;
        assert_eq!(listed.status, 200);
        assert_eq!(listed.body[0]["name"], "Oslo");
        assert_eq!(listed.body[0]["messages"], json!([]));

        say(&mut alice, id, "going, going").await;
        let deleted = alice.delete(&format!("/api/conversations/{id}")).await;
        assert_eq!(deleted.status, 204);
        assert_eq!(deleted.body, Value::Null, "no body");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 0, "its messages went with it");
        assert_eq!(alice.get("/api/conversations").await.body, json!([]));
        alice.delete(&format!("/api/conversations/{id}")).await.assert_error(404, "not_found");
    }

    async fn a_conversation_without_a_name_gets_the_default(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        for body in [None, Some("{}"), Some(r#"{"name": null}"#)] {
            let reply = alice
                .send(awc::http::Method::POST, "/api/conversations", body.map(str::to_owned), &[])
                .await;
            assert_eq!(reply.status, 201, "{body:?}: {reply:?}");
            assert_eq!(reply.body["name"], "New conversation");
        }
    }

    async fn sending_a_message_stores_it_and_the_bots_reply(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("chat").await;

        let exchange = say(&mut alice, id, "  I went hiking in Norway  ").await;
        let [user, bot] = exchange.as_array().unwrap().as_slice() else {
            panic!("two messages: {exchange}")
        };
        assert_eq!(user["sender"], "user");
        assert_eq!(user["text"], "I went hiking in Norway");
        assert_eq!(bot["sender"], "bot");
        assert!(bot["text"].as_str().unwrap().contains("Norway"), "the reply depends on the text: {bot}");
        for message in [user, bot] {
            assert!(message["id"].as_i64().unwrap() > 0);
            assert!(is_timestamp(&message["created_at"]), "{message}");
            let mut keys: Vec<_> = message.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(keys, ["created_at", "id", "sender", "status", "text"]);
            assert_eq!(message["status"], "complete");
        }
        let other = say(&mut alice, id, "What about Sweden?").await;
        assert_ne!(other[1]["text"], bot["text"]);

        let listed = alice.get("/api/conversations").await;
        let texts: Vec<_> = listed.body[0]["messages"].as_array().unwrap().iter().map(|m| m["text"].clone()).collect();
        assert_eq!(texts, [user["text"].clone(), bot["text"].clone(), other[0]["text"].clone(), other[1]["text"].clone()]);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 4);
    }

    async fn the_first_reply_titles_a_conversation_that_still_has_the_default_name(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let untitled = alice.post("/api/conversations", json!({})).await.body["id"].as_i64().unwrap();
        let named = alice.create_conversation("My trip").await;
        for id in [untitled, named] {
            say(&mut alice, id, "  Where should I go hiking in Norway this summer?").await;
        }
        say(&mut alice, untitled, "And in winter?").await;
        let listed = alice.get("/api/conversations").await.body;
        let name_of = |id: i64| listed.as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["name"].clone();
        assert_eq!(name_of(untitled), "Where should I go hiking in", "the first words, once");
        assert_eq!(name_of(named), "My trip", "a name the user gave stays");
    }

    async fn the_list_shows_the_most_recently_active_first(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let first = alice.create_conversation("first").await;
        let second = alice.create_conversation("second").await;
        let names = |body: &Value| -> Vec<String> {
            body.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(names(&alice.get("/api/conversations").await.body), ["second", "first"]);
        say(&mut alice, first, "bump").await;
        assert_eq!(names(&alice.get("/api/conversations").await.body), ["first", "second"]);
        let _ = second;
    }

    async fn other_users_conversations_are_not_found_on_every_route(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("private").await;
        say(&mut alice, id, "secret").await;
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;

        assert_eq!(bob.get("/api/conversations").await.body, json!([]));
        let path = format!("/api/conversations/{id}");
        let foreign = [
            bob.put(&path, json!({"name": "mine"})).await,
            bob.delete(&path).await,
            bob.post(&format!("{path}/messages"), json!({"text": "hi"})).await,
        ];
        let missing = bob.delete("/api/conversations/999999").await;
        for reply in &foreign {
            reply.assert_error(404, "not_found");
            assert_eq!(reply.body, missing.body, "indistinguishable from a missing id");
        }
        let listed = alice.get("/api/conversations").await;
        assert_eq!(listed.body[0]["name"], "private");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 2);
    }

    async fn ids_that_are_not_positive_integers_are_not_found(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        for id in ["abc", "-1", "0", "1.5", "99999999999999999999999", "%20"] {
            let path = format!("/api/conversations/{id}");
            alice.put(&path, json!({"name": "x"})).await.assert_error(404, "not_found");
            alice.delete(&path).await.assert_error(404, "not_found");
            alice.post(&format!("{path}/messages"), json!({"text": "x"})).await.assert_error(404, "not_found");
        }
    }

    async fn invalid_names_and_texts_are_refused_and_change_nothing(db) {
        let short = settings(&db, &[("CHATBOT__LIMITS__MAX_MESSAGE_CHARS", "50")]);
        let server = Server::start(short).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("kept").await;

        for name in [json!(""), json!("   "), json!("x".repeat(101)), json!("two\nlines")] {
            alice.post("/api/conversations", json!({"name": name})).await.assert_error(400, "validation_failed");
            alice.put(&format!("/api/conversations/{id}"), json!({"name": name})).await.assert_error(400, "validation_failed");
        }
        alice.put(&format!("/api/conversations/{id}"), json!({})).await.assert_error(400, "bad_request");
        for text in [json!(""), json!(" \n "), json!("x".repeat(51))] {
            let reply = alice.post(&format!("/api/conversations/{id}/messages"), json!({"text": text})).await;
            reply.assert_error(400, "validation_failed");
            assert!(reply.body["error"].as_str().unwrap().starts_with("Text"), "{reply:?}");
        }
        alice.post(&format!("/api/conversations/{id}/messages"), json!({"text": 42})).await.assert_error(400, "bad_request");

        assert_eq!(db.count("SELECT COUNT(*) AS n FROM conversations"), 1);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 0);
        assert_eq!(alice.get("/api/conversations").await.body[0]["name"], "kept");
    }

    async fn refused_writes_to_a_conversation_change_nothing(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__LIMITS__MAX_BODY_BYTES", "1024")])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("kept").await;
        let messages = format!("/api/conversations/{id}/messages");
        let big = json!({"text": "x".repeat(2_000)});

        alice.post(&messages, big.clone()).await.assert_error(413, "payload_too_large");
        alice.put(&format!("/api/conversations/{id}"), json!({"name": "y".repeat(2_000)})).await.assert_error(413, "payload_too_large");
        let form = alice.send(awc::http::Method::POST, &messages, Some("text=hi".into()), &[("Content-Type", "application/x-www-form-urlencoded")]).await;
        form.assert_error(415, "unsupported_media_type");
        let mut anonymous = server.client();
        anonymous.post(&messages, json!({"text": "hi"})).await.assert_error(401, "unauthorized");

        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 0);
        assert_eq!(alice.get("/api/conversations").await.body[0]["name"], "kept");
    }

    async fn every_conversation_route_needs_a_session(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut anonymous = server.client();
        anonymous.get("/api/conversations").await.assert_error(401, "unauthorized");
        anonymous.post("/api/conversations", json!({"name": "x"})).await.assert_error(401, "unauthorized");
        anonymous.put("/api/conversations/1", json!({"name": "x"})).await.assert_error(401, "unauthorized");
        anonymous.delete("/api/conversations/1").await.assert_error(401, "unauthorized");
        anonymous.post("/api/conversations/1/messages", json!({"text": "x"})).await.assert_error(401, "unauthorized");
    }

    async fn a_list_reflects_every_change_made_through_another_instance(db) {
        let one = Server::start(settings(&db, &[])).await;
        let two = Server::start(settings(&db, &[])).await;
        let mut on_one = one.client();
        on_one.sign_up_and_log_in("alice").await;
        let mut on_two = two.client();
        on_two.cookie = on_one.cookie.clone();
        let mut list = async || {
            let listed = on_one.get("/api/conversations").await;
            assert_eq!(listed.status, 200);
            listed.body
        };
        assert_eq!(list().await, json!([]));
        assert_eq!(list().await, json!([]), "twice, so that the second may come from a cache");

        let id = on_two.create_conversation("made on two").await;
        assert_eq!(list().await[0]["name"], "made on two");
        say(&mut on_two, id, "hello from two").await;
        assert_eq!(list().await[0]["messages"][0]["text"], "hello from two");
        on_two.put(&format!("/api/conversations/{id}"), json!({"name": "renamed on two"})).await;
        assert_eq!(list().await[0]["name"], "renamed on two");
        on_two.delete(&format!("/api/conversations/{id}")).await;
        assert_eq!(list().await, json!([]));
    }
}
