//! Conditional GETs: the conversation list (both forms) and a messages page carry a
//! strong `ETag`; sending it back answers 304 until the user writes anything.

use awc::http::Method;
use serde_json::{Value, json};

use crate::support::{Client, Reply, Server, api_tests, settings};

/// The resources a user's revision versions, for a user with conversation `id`.
fn versioned(id: i64) -> [String; 4] {
    [
        "/api/conversations".to_owned(),
        "/api/conversations?limit=20".to_owned(),
        "/api/conversations?limit=5&include=messages".to_owned(),
        format!("/api/conversations/{id}/messages?limit=10"),
    ]
}

async fn get_if_none_match(client: &mut Client, path: &str, tag: &str) -> Reply {
    client
        .send(Method::GET, path, None, &[("If-None-Match", tag)])
        .await
}

/// The current tag of each of `paths`, checked to be strong and sent with the
/// caching rules that make a browser revalidate.
async fn tags(client: &mut Client, paths: &[String]) -> Vec<String> {
    let mut tags = Vec::new();
    for path in paths {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        let tag = reply.header("etag").expect("an ETag").to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "strong: {tag}");
        assert_eq!(reply.header("cache-control"), Some("private, no-cache"));
        let vary = reply.header("vary").unwrap_or_default();
        assert!(
            vary.split(", ").any(|name| name == "Cookie"),
            "{path}: {vary}"
        );
        tags.push(tag);
    }
    tags
}

/// Asserts that every tag of `before` is still current: 304, no body, the same tag.
async fn still_current(client: &mut Client, paths: &[String], before: &[String], what: &str) {
    for (path, tag) in paths.iter().zip(before) {
        let reply = get_if_none_match(client, path, tag).await;
        assert_eq!(reply.status, 304, "{what}: {path}: {reply:?}");
        assert_eq!(reply.body, Value::Null, "no body");
        assert_eq!(reply.header("etag"), Some(tag.as_str()));
    }
}

/// Asserts that no tag of `before` is current any more (200 with the representation
/// and a new tag), and returns the new tags.
async fn all_changed(
    client: &mut Client,
    paths: &[String],
    before: &[String],
    what: &str,
) -> Vec<String> {
    let mut after = Vec::new();
    for (path, tag) in paths.iter().zip(before) {
        let reply = get_if_none_match(client, path, tag).await;
        assert_eq!(reply.status, 200, "after {what}: {path} still {tag}");
        assert_ne!(reply.body, Value::Null);
        let new = reply.header("etag").unwrap().to_owned();
        assert_ne!(&new, tag, "after {what}: {path}");
        after.push(new);
    }
    after
}

api_tests! {
    async fn the_current_tag_answers_304_without_a_body(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("first").await;
        alice.post(&format!("/api/conversations/{id}/messages"), json!({"text": "hi"})).await;
        let paths = versioned(id);
        let tags = tags(&mut alice, &paths).await;
        let mut distinct = tags.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), paths.len(), "each resource its own tag: {tags:?}");

        still_current(&mut alice, &paths, &tags, "nothing written").await;
        // If-None-Match compares weakly; it may list several tags, or `*`.
        let weak = format!("W/{}", tags[0]);
        let listed = format!("\"old\", {}", tags[0]);
        for given in [weak.as_str(), listed.as_str(), "*"] {
            let reply = get_if_none_match(&mut alice, &paths[0], given).await;
            assert_eq!(reply.status, 304, "{given}");
        }
        // Another resource's tag, or another one, is not this one's.
        assert_eq!(get_if_none_match(&mut alice, &paths[0], &tags[1]).await.status, 200);
        assert_eq!(get_if_none_match(&mut alice, &paths[0], "\"1-1-1\"").await.status, 200);
        let head = alice.send(Method::HEAD, &paths[0], None, &[("If-None-Match", &tags[0])]).await;
        assert_eq!(head.status, 304);

        // Whatever the client holds: bad input is a 400, a missing conversation a 404.
        for bad in ["/api/conversations?limit=abc", "/api/conversations?include=everything"] {
            get_if_none_match(&mut alice, bad, "*").await.assert_error(400, "validation_failed");
        }
        let missing = format!("/api/conversations/{}/messages", id + 1_000);
        get_if_none_match(&mut alice, &missing, "*").await.assert_error(404, "not_found");
        assert_eq!(get_if_none_match(&mut alice, &paths[3], "*").await.status, 200);
    }

    async fn every_write_of_the_user_changes_every_tag(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__BOT__SIMULATED_DELAY_MS", "40")])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("first").await;
        let paths = versioned(id);
        let mut tags = tags(&mut alice, &paths).await;

        let writes: [(&str, Method, String, Value); 7] = [
            ("a new conversation", Method::POST, "/api/conversations".to_owned(), json!({"name": "second"})),
            ("a rename", Method::PUT, format!("/api/conversations/{id}"), json!({"name": "renamed"})),
            ("a message", Method::POST, format!("/api/conversations/{id}/messages"), json!({"text": "hello there"})),
            ("a new display name", Method::PATCH, "/api/me".to_owned(), json!({"display_name": "Al"})),
            ("a new address", Method::PATCH, "/api/me".to_owned(), json!({"email": "alice@example.com"})),
            ("a new password", Method::POST, "/api/me/password".to_owned(),
                json!({"current_password": "correct horse", "new_password": "battery staple"})),
            ("a verification mail", Method::POST, "/api/me/email/verify".to_owned(), json!({})),
        ];
        for (what, method, path, body) in writes {
            if what == "a verification mail" {
                // Mailing a link changes nothing the user keeps: no new tag.
                let reply = alice.send(method, &path, Some(body.to_string()), &[]).await;
                assert!(reply.status.is_success(), "{what}: {reply:?}");
                still_current(&mut alice, &paths, &tags, what).await;
                continue;
            }
            let reply = alice.send(method, &path, Some(body.to_string()), &[]).await;
            assert!(reply.status.is_success(), "{what}: {reply:?}");
            tags = all_changed(&mut alice, &paths, &tags, what).await;
        }

        // A streamed reply: its start, then its end, each change every tag.
        let mut events = alice.stream_message(id, "tell me about the lighthouses of the coast").await;
        events.expect("message").await;
        let reply = events.expect("reply").await.data["id"].as_i64().unwrap();
        tags = all_changed(&mut alice, &paths, &tags, "a streamed reply begun").await;
        let stopped = alice.post(&format!("/api/conversations/{id}/messages/{reply}/stop"), json!({})).await;
        assert_eq!(stopped.status, 200, "{stopped:?}");
        events.rest().await;
        tags = all_changed(&mut alice, &paths, &tags, "a reply stopped").await;

        // Refused writes and reads change nothing.
        let refused = alice.post(&format!("/api/conversations/{id}/messages"), json!({"text": "  "})).await;
        refused.assert_error(400, "validation_failed");
        alice.put(&format!("/api/conversations/{id}"), json!({"name": ""})).await.assert_error(400, "validation_failed");
        alice.get("/api/me").await;
        still_current(&mut alice, &paths, &tags, "refusals and reads").await;

        let other = alice.create_conversation("to delete").await;
        tags = all_changed(&mut alice, &paths, &tags, "another new conversation").await;
        let deleted = alice.delete(&format!("/api/conversations/{other}")).await;
        assert_eq!(deleted.status, 204);
        all_changed(&mut alice, &paths, &tags, "a deletion").await;
    }

    async fn a_tag_is_no_use_to_another_user(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        // Both at the same point of their own histories.
        let alices = tags(&mut alice, &versioned(1)[..1]).await;
        let bobs = tags(&mut bob, &versioned(1)[..1]).await;
        assert_ne!(alices, bobs);
        let reply = get_if_none_match(&mut bob, "/api/conversations", &alices[0]).await;
        assert_eq!((reply.status.as_u16(), reply.body), (200, json!([])));
        let logged_out = server.client().send(Method::GET, "/api/conversations", None, &[("If-None-Match", "*")]).await;
        logged_out.assert_error(401, "unauthorized");
    }
}
