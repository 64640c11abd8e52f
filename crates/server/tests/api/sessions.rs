//! Server-side sessions: logout, rotation, restarts, several instances, expiry.

use std::time::Duration;

use chatbot_domain::ports::Clock;
use chatbot_domain::{ManualClock, SystemClock};
use serde_json::json;

use crate::support::{Server, api_tests, settings};

api_tests! {
    async fn a_cookie_replayed_after_logout_is_refused(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let copied = alice.cookie.clone();

        assert_eq!(alice.get("/api/logout").await.status, 200);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM sessions"), 0, "deleted server-side");

        let mut thief = server.client();
        thief.cookie = copied;
        thief.get("/api/conversations").await.assert_error(401, "unauthorized");
        thief.post("/api/conversations", json!({"name": "x"})).await.assert_error(401, "unauthorized");
    }

    async fn logging_in_rotates_the_session_key(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let first = alice.cookie.clone().unwrap();

        let again = alice.post("/api/login", json!({"username": "alice", "password": "correct horse"})).await;
        assert_eq!(again.status, 200);
        let second = alice.cookie.clone().unwrap();
        assert_ne!(first, second);

        let mut old = server.client();
        old.cookie = Some(first);
        old.get("/api/conversations").await.assert_error(401, "unauthorized");
        assert_eq!(alice.get("/api/conversations").await.status, 200);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM sessions"), 1);
    }

    async fn a_tampered_cookie_is_refused(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let cookie = alice.cookie.clone().unwrap();
        let (name, value) = cookie.split_once('=').unwrap();
        let mut forger = server.client();
        // Another first character: the signature no longer matches.
        let other = if value.starts_with('x') { 'y' } else { 'x' };
        forger.cookie = Some(format!("{name}={other}{}", &value[1..]));
        forger.get("/api/conversations").await.assert_error(401, "unauthorized");
    }

    async fn sessions_survive_a_restart(db) {
        let first = Server::start(settings(&db, &[])).await;
        let mut alice = first.client();
        alice.sign_up_and_log_in("alice").await;
        alice.create_conversation("before the restart").await;
        let cookie = alice.cookie.clone();
        first.stop().await;

        let second = Server::start(settings(&db, &[])).await;
        let mut alice = second.client();
        alice.cookie = cookie;
        let listed = alice.get("/api/conversations").await;
        assert_eq!(listed.status, 200);
        assert_eq!(listed.body[0]["name"], "before the restart");
    }

    async fn two_instances_on_one_database_share_sessions(db) {
        let one = Server::start(settings(&db, &[])).await;
        let two = Server::start(settings(&db, &[])).await;
        let mut on_one = one.client();
        on_one.sign_up_and_log_in("alice").await;
        let mut on_two = two.client();
        on_two.cookie = on_one.cookie.clone();

        let id = on_two.create_conversation("made on two").await;
        let listed = on_one.get("/api/conversations").await;
        assert_eq!(listed.body[0]["id"], id);

        assert_eq!(on_two.get("/api/logout").await.status, 200);
        on_one.get("/api/conversations").await.assert_error(401, "unauthorized");
    }

    async fn an_idle_session_expires_and_use_renews_it(db) {
        let clock = ManualClock::starting_at(SystemClock.now());
        let server = Server::start_with_clock(settings(&db, &[]), &clock).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;

        // Used every 25 minutes for 75 in all: each use renews the 30-minute deadline.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(25 * 60));
            assert_eq!(alice.get("/api/conversations").await.status, 200);
        }
        clock.advance(Duration::from_secs(30 * 60));
        alice.get("/api/conversations").await.assert_error(401, "unauthorized");
    }

    async fn expired_sessions_are_purged(db) {
        let clock = ManualClock::starting_at(SystemClock.now());
        let server = Server::start_with_clock(settings(&db, &[]), &clock).await;
        server.client().sign_up_and_log_in("alice").await;
        server.client().sign_up_and_log_in("bob").await;
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM sessions"), 2);
        server.stop().await;

        // Past alice's and bob's deadlines, a server's purge, which runs when it
        // starts and then every `session.purge_interval_seconds`, deletes them; carol's
        // session, new, stays.
        clock.advance(Duration::from_secs(30 * 60));
        let server = Server::start_with_clock(settings(&db, &[]), &clock).await;
        server.client().sign_up_and_log_in("carol").await;
        let mut left = db.count("SELECT COUNT(*) AS n FROM sessions");
        for _ in 0..100 {
            if left == 1 {
                break;
            }
            // The purge is a background task: wait for it to have run, not for time.
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            left = db.count("SELECT COUNT(*) AS n FROM sessions");
        }
        assert_eq!(left, 1);
    }
}
