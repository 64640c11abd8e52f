//! Rate limits and security headers.

use std::time::Duration;

use awc::http::Method;
use chatbot_domain::ports::Clock;
use chatbot_domain::{ManualClock, SystemClock};
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
    log_in_with(client, name, "wrong password", forwarded_for).await
}

async fn log_in_with(
    client: &mut Client,
    name: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let body = json!({"username": name, "password": password}).to_string();
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

/// A 429 telling the client to wait at most `most` seconds (and at least one).
fn assert_rate_limited_for(reply: &Reply, most: u64) {
    reply.assert_error(429, "rate_limited");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=most).contains(&wait), "{reply:?}");
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

    async fn forwarded_entries_with_ports_or_no_address_are_clients_of_their_own(db) {
        let mut behind_proxy = LIMITED.to_vec();
        behind_proxy.push(("CHATBOT__SERVER__TRUSTED_PROXIES", "127.0.0.1"));
        let server = Server::start(settings(&db, &behind_proxy)).await;
        let mut client = server.client();
        // A proxy that writes ports, or `unknown`: each client still has its own
        // bucket, none the proxy's.
        for forwarded in ["203.0.113.9:40000", "[2001:db8::1]:5555", "unknown"] {
            for _ in 0..3 {
                assert_eq!(log_in_as(&mut client, "x", Some(forwarded)).await.status, 401, "{forwarded}");
            }
            assert_rate_limited(&log_in_as(&mut client, "x", Some(forwarded)).await);
        }
        // Another port of the same address is the same client; another address is not,
        // nor is another IPv6 network, while the same /64 is.
        assert_rate_limited(&log_in_as(&mut client, "x", Some("203.0.113.9:1")).await);
        assert_rate_limited(&log_in_as(&mut client, "x", Some("[2001:db8::2]:1")).await);
        assert_eq!(log_in_as(&mut client, "x", Some("203.0.113.10:40000")).await.status, 401);
        assert_eq!(log_in_as(&mut client, "x", Some("[2001:db8:0:1::1]:5555")).await.status, 401);
        assert_eq!(log_in_as(&mut client, "x", None).await.status, 401, "the proxy's own bucket is untouched");
    }

    async fn failed_logins_are_limited_per_username_from_any_address(db) {
        let clock = ManualClock::starting_at(SystemClock.now());
        let mut limited = LIMITED.to_vec();
        limited.extend([
            ("CHATBOT__SERVER__TRUSTED_PROXIES", "127.0.0.1"),
            ("CHATBOT__RATE_LIMIT__FAILED_LOGINS_PER_USERNAME", "3"),
            ("CHATBOT__RATE_LIMIT__FAILED_LOGINS_WINDOW_SECONDS", "900"),
        ]);
        let server = Server::start_with_clock(settings(&db, &limited), &clock).await;
        let mut client = server.client();
        for name in ["alice", "bob"] {
            let signup = json!({"username": name, "password": "correct horse"}).to_string();
            let created = client.send(Method::POST, "/api/signup", Some(signup), &[("X-Forwarded-For", "192.0.2.1")]).await;
            assert_eq!(created.status, 201);
        }
        // Three wrong passwords, each from an address of its own (well within each
        // address's limit), the name typed in another case each time.
        for (index, name) in ["alice", "ALICE", "Alice"].into_iter().enumerate() {
            let reply = log_in_as(&mut client, name, Some(&format!("198.51.100.{index}"))).await;
            reply.assert_error(401, "unauthorized");
        }
        let refused = log_in_with(&mut client, "alice", "correct horse", Some("198.51.100.50")).await;
        assert_rate_limited_for(&refused, 900);
        assert!(refused.header("set-cookie").is_none(), "no session: {refused:?}");
        // Names no account has are limited alike: the answer tells no names.
        for index in 0..3 {
            log_in_as(&mut client, "nobody", Some(&format!("198.51.100.{}", 10 + index))).await.assert_error(401, "unauthorized");
        }
        assert_rate_limited_for(&log_in_as(&mut client, "nobody", Some("198.51.100.20")).await, 900);
        // Bob is not held up by Alice's attacker.
        assert_eq!(log_in_with(&mut client, "bob", "correct horse", Some("198.51.100.60")).await.status, 200);

        clock.advance(Duration::from_secs(900));
        let after = log_in_with(&mut client, "alice", "correct horse", Some("198.51.100.51")).await;
        assert_eq!(after.status, 200, "the window ended");
        // A success forgets the failures: three more may fail before the next pause.
        for index in 0..3 {
            log_in_as(&mut client, "alice", Some(&format!("198.51.100.{}", 30 + index))).await.assert_error(401, "unauthorized");
        }
        assert_rate_limited_for(&log_in_as(&mut client, "alice", Some("198.51.100.40")).await, 900);
    }

    async fn every_write_is_limited_per_user(db) {
        let mut limited = LIMITED.to_vec();
        limited.extend([
            ("CHATBOT__RATE_LIMIT__AUTH_BURST", "10"),
            ("CHATBOT__RATE_LIMIT__WRITES_PER_MINUTE", "1"),
            ("CHATBOT__RATE_LIMIT__WRITES_BURST", "3"),
        ]);
        let server = Server::start(settings(&db, &limited)).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let first = alice.create_conversation("one").await;
        let second = alice.create_conversation("two").await;
        let renamed = alice.put(&format!("/api/conversations/{first}"), json!({"name": "renamed"})).await;
        assert_eq!(renamed.status, 200);
        // The allowance is spent, whatever the next write is; nothing changes.
        let path = format!("/api/conversations/{second}");
        let sent = alice.post(&format!("{path}/messages"), json!({"text": "hi"})).await;
        assert_eq!(sent.status, 201, "messages keep their own allowance");
        let reply_id = sent.body[1]["id"].as_i64().unwrap();
        let sessions = alice.get("/api/me/sessions").await.body;
        let session = sessions[0]["id"].as_i64().unwrap();
        let password = json!({"current_password": "correct horse", "new_password": "another horse"});
        let writes = [
            (Method::POST, "/api/conversations".to_owned(), Some(json!({"name": "three"}))),
            (Method::PUT, path.clone(), Some(json!({"name": "again"}))),
            (Method::DELETE, path.clone(), None),
            (Method::POST, format!("{path}/messages/{reply_id}/stop"), None),
            (Method::PATCH, "/api/me".to_owned(), Some(json!({"display_name": "A"}))),
            (Method::POST, "/api/me/password".to_owned(), Some(password)),
            (Method::POST, "/api/me/email/verify".to_owned(), None),
            (Method::DELETE, "/api/me/sessions".to_owned(), None),
            (Method::DELETE, format!("/api/me/sessions/{session}"), None),
            (Method::DELETE, "/api/me".to_owned(), Some(json!({"password": "correct horse"}))),
        ];
        for (method, path, body) in writes {
            let reply = alice.send(method.clone(), &path, body.map(|b| b.to_string()), &[]).await;
            assert_rate_limited(&reply);
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM conversations"), 2);
        assert_eq!(db.texts("SELECT name AS t FROM conversations ORDER BY id"), ["renamed", "two"]);
        assert_eq!(alice.get("/api/me").await.body["display_name"], "alice");
        // Bob has his own allowance.
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        bob.create_conversation("bob's").await;
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
