//! Rate limits and security headers.

use awc::http::Method;
use serde_json::json;

use crate::support::{Client, Reply, Server, api_tests, settings};

const LIMITED: [(&str, &str); 5] = [
    ("CHATBOT__RATE_LIMIT__ENABLED", "true"),
    ("CHATBOT__RATE_LIMIT__AUTH_PER_MINUTE", "1"),
    ("CHATBOT__RATE_LIMIT__AUTH_BURST", "3"),
    ("CHATBOT__RATE_LIMIT__MESSAGES_PER_MINUTE", "1"),
    ("CHATBOT__RATE_LIMIT__MESSAGES_BURST", "2"),
];

async fn log_in_as(client: &mut Client, name: &str, forwarded_for: Option<&str>) -> Reply {
    let body = json!({"username": name, "password": "wrong password"}).to_string();
    let headers: Vec<(&str, &str)> = forwarded_for
        .map(|f| ("X-Forwarded-For", f))
        .into_iter()
        .collect();
    client
        .send(Method::POST, "/api/login", Some(body), &headers)
        .await
}

fn assert_rate_limited(reply: &Reply) {
    reply.assert_error(429, "rate_limited");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{reply:?}");
}

api_tests! {
    async fn logins_and_signups_share_a_limit_per_client_address(db) {
        let server = Server::start(settings(&db, &LIMITED)).await;
        let mut client = server.client();
        let signup = client.post("/api/signup", json!({"username": "alice", "password": "password1"})).await;
        assert_eq!(signup.status, 201);
        for _ in 0..2 {
            log_in_as(&mut client, "alice", None).await.assert_error(401, "unauthorized");
        }
        assert_rate_limited(&log_in_as(&mut client, "alice", None).await);
        let refused = client.post("/api/signup", json!({"username": "bob", "password": "password1"})).await;
        assert_rate_limited(&refused);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1, "the refused signup stored nothing");
        // Other routes are not limited.
        assert_eq!(client.get("/api/test").await.status, 200);
    }

    async fn an_untrusted_client_cannot_spoof_its_address(db) {
        let server = Server::start(settings(&db, &LIMITED)).await;
        let mut client = server.client();
        for i in 0..3 {
            let reply = log_in_as(&mut client, "x", Some(&format!("198.51.100.{i}"))).await;
            assert_eq!(reply.status, 401);
        }
        assert_rate_limited(&log_in_as(&mut client, "x", Some("198.51.100.99")).await);
    }

    async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(db) {
        let mut behind_proxy = LIMITED.to_vec();
        behind_proxy.push(("CHATBOT__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"));
        let server = Server::start(settings(&db, &behind_proxy)).await;
        let mut client = server.client();
        for i in 0..6 {
            let reply = log_in_as(&mut client, "x", Some(&format!("1.2.3.4, 198.51.100.{i}"))).await;
            assert_eq!(reply.status, 401, "client {i}");
        }
        for _ in 0..3 {
            log_in_as(&mut client, "x", Some("198.51.100.200")).await;
        }
        assert_rate_limited(&log_in_as(&mut client, "x", Some("spoofed, 198.51.100.200")).await);
    }

    async fn messages_are_limited_per_user(db) {
        let mut limited = LIMITED.to_vec();
        limited.push(("CHATBOT__RATE_LIMIT__AUTH_BURST", "10"));
        let server = Server::start(settings(&db, &limited)).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("chat").await;
        let path = format!("/api/conversations/{id}/messages");
        for _ in 0..2 {
            assert_eq!(alice.post(&path, json!({"text": "hi"})).await.status, 201);
        }
        assert_rate_limited(&alice.post(&path, json!({"text": "hi"})).await);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 4, "two exchanges, nothing of the third");

        // Bob, from the same address, has his own allowance.
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        let his = bob.create_conversation("bob's").await;
        assert_eq!(bob.post(&format!("/api/conversations/{his}/messages"), json!({"text": "hi"})).await.status, 201);
        // Without a session there is no user to count: the usual 401.
        server.client().post(&path, json!({"text": "hi"})).await.assert_error(401, "unauthorized");
    }

    async fn limits_can_be_switched_off(db) {
        let mut off = LIMITED.to_vec();
        off[0] = ("CHATBOT__RATE_LIMIT__ENABLED", "false");
        let server = Server::start(settings(&db, &off)).await;
        let mut client = server.client();
        for _ in 0..10 {
            assert_eq!(log_in_as(&mut client, "nobody", None).await.status, 401);
        }
    }

    async fn responses_carry_the_security_headers(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let ok = client.get("/api/test").await;
        let error = client.get("/api/nope").await;
        let refused = client.get("/api/conversations").await;
        for reply in [&ok, &error, &refused] {
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{reply:?}");
            assert_eq!(reply.header("x-frame-options"), Some("DENY"));
            assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(reply.header("cache-control"), Some("no-store"));
        }
    }
}
