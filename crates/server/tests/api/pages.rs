//! Cursor pagination of conversations and of a conversation's messages.

use serde_json::{Value, json};

use crate::support::{Client, Server, api_tests, settings};

fn ids(items: &Value) -> Vec<i64> {
    let items = items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"));
    items
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

async fn say(client: &mut Client, conversation: i64, text: &str) -> Vec<i64> {
    let path = format!("/api/conversations/{conversation}/messages");
    let reply = client.post(&path, json!({"text": text})).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    ids(&reply.body)
}

/// Follows `next` from `first` to the end; returns each page's ids.
async fn walk(client: &mut Client, first: &str, key: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut path = first.to_owned();
    loop {
        let page = client.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        pages.push(ids(&page.body[key]));
        match &page.body["next"] {
            Value::Null => return pages,
            Value::String(cursor) => path = format!("{first}&before={cursor}"),
            Value::Number(id) => path = format!("{first}&before={id}"),
            other => panic!("next is {other}"),
        }
    }
}

api_tests! {
    async fn conversations_page_by_recent_activity(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut created = Vec::new();
        for name in ["one", "two", "three", "four", "five"] {
            created.push(alice.create_conversation(name).await);
        }
        say(&mut alice, created[1], "bring two to the top").await;
        let newest_first = vec![created[1], created[4], created[3], created[2], created[0]];

        let pages = walk(&mut alice, "/api/conversations?limit=2", "conversations").await;
        assert_eq!(pages, [newest_first[..2].to_vec(), newest_first[2..4].to_vec(), newest_first[4..].to_vec()]);

        let page = alice.get("/api/conversations?limit=2").await;
        let first = &page.body["conversations"][0];
        assert_eq!(first["name"], "two");
        assert!(first.get("messages").is_none(), "messages only when asked: {first}");
        assert!(first["updated_at"].is_string());

        let page = alice.get("/api/conversations?limit=1&include=messages").await;
        let texts: Vec<_> = page.body["conversations"][0]["messages"]
            .as_array().unwrap().iter().map(|m| m["sender"].as_str().unwrap()).collect();
        assert_eq!(texts, ["user", "bot"]);
        assert!(page.body["next"].is_string());

        let defaults = alice.get("/api/conversations?include=messages").await;
        assert_eq!(ids(&defaults.body["conversations"]), newest_first, "20 to a page by default");
        assert_eq!(defaults.body["next"], Value::Null);

        let seed = alice.get("/api/conversations?_=1700000000").await;
        assert_eq!(ids(&seed.body), newest_first, "other parameters keep the seed's list");
        let bob_sees = {
            let mut bob = server.client();
            bob.sign_up_and_log_in("bob").await;
            bob.get("/api/conversations?limit=10").await.body
        };
        assert_eq!(bob_sees, json!({"conversations": [], "next": null}));
    }

    async fn messages_page_back_from_the_latest(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let chat = alice.create_conversation("long").await;
        let mut said = Vec::new();
        for i in 0..3 {
            said.extend(say(&mut alice, chat, &format!("message {i}")).await);
        }
        let first = format!("/api/conversations/{chat}/messages?limit=4");
        let pages = walk(&mut alice, &first, "messages").await;
        assert_eq!(pages, [said[2..].to_vec(), said[..2].to_vec()]);

        let all = alice.get(&format!("/api/conversations/{chat}/messages")).await;
        assert_eq!(ids(&all.body["messages"]), said);
        assert_eq!(all.body["next"], Value::Null);
        let message = &all.body["messages"][0];
        assert_eq!((message["sender"].as_str(), message["text"].as_str()), (Some("user"), Some("message 0")));

        let empty = alice.create_conversation("empty").await;
        let none = alice.get(&format!("/api/conversations/{empty}/messages?limit=5")).await;
        assert_eq!(none.body, json!({"messages": [], "next": null}));
    }

    async fn page_queries_are_checked_and_pages_stay_private(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let chat = alice.create_conversation("mine").await;
        let messages = format!("/api/conversations/{chat}/messages");
        let refused = [
            ("/api/conversations?limit=0", "limit"),
            ("/api/conversations?limit=101", "limit"),
            ("/api/conversations?limit=ten", "limit"),
            ("/api/conversations?before=yesterday", "before"),
            ("/api/conversations?before=17_-3", "before"),
            ("/api/conversations?include=everything", "include"),
            (&format!("{messages}?limit=-1"), "limit"),
            (&format!("{messages}?before=0"), "before"),
            (&format!("{messages}?before=1_2"), "before"),
        ];
        for (path, field) in refused {
            let reply = alice.get(path).await;
            reply.assert_error(400, "validation_failed");
            let sentence = reply.body["error"].as_str().unwrap();
            assert!(sentence.to_lowercase().starts_with(field), "{path}: {sentence}");
        }
        alice.get("/api/conversations?limit=1&limit=2").await.assert_error(400, "bad_request");

        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        bob.get(&messages).await.assert_error(404, "not_found");
        bob.get("/api/conversations/999999/messages").await.assert_error(404, "not_found");
        bob.get("/api/conversations/abc/messages").await.assert_error(404, "not_found");
        server.client().get(&messages).await.assert_error(401, "unauthorized");
        server.client().get("/api/conversations?limit=5").await.assert_error(401, "unauthorized");
    }
}
