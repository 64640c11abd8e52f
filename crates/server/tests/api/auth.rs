//! Connection test, signup, login and logout.

use serde_json::json;

use crate::support::{Server, api_tests, settings};

api_tests! {
    async fn the_connection_test_answers(db) {
        let server = Server::start(settings(&db, &[])).await;
        let reply = server.client().get("/api/test").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, json!({"message": "Server is running"}));
    }

    async fn sign_up_then_log_in_with_a_cookie(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();

        let signup = alice.post("/api/signup", json!({"username": "Alice", "password": "correct horse"})).await;
        assert_eq!(signup.status, 201);
        assert_eq!(signup.body, json!({"message": "User created successfully"}));
        assert!(alice.cookie.is_none(), "signup does not log in");
        alice.get("/api/conversations").await.assert_error(401, "unauthorized");

        let login = alice.post("/api/login", json!({"username": "alice", "password": "correct horse"})).await;
        assert_eq!(login.status, 200);
        let id = login.body["user"]["id"].as_i64().unwrap();
        assert!(id > 0);
        assert_eq!(
            login.body,
            json!({"message": "Login successful", "user": {"id": id, "username": "Alice"}}),
            "the name as typed at signup"
        );
        let cookie = login.header("set-cookie").unwrap();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain HTTP in development: {cookie}");
        assert_eq!(alice.get("/api/conversations").await.status, 200);
    }

    async fn production_cookies_are_secure(db) {
        let production = settings(&db, &[("APP_ENV", "production")]);
        let server = Server::start(production).await;
        let mut alice = server.client();
        assert_eq!(alice.post("/api/signup", json!({"username": "alice", "password": "correct horse"})).await.status, 201);
        let login = alice.post("/api/login", json!({"username": "alice", "password": "correct horse"})).await;
        let cookie = login.header("set-cookie").unwrap();
        assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    }

    async fn passwords_of_exactly_72_bytes_sign_up_and_log_in(db) {
        // The longest password the rules allow, in ASCII and in two-byte characters:
        // bcrypt's non-truncating call refused both (found by the fuzzer, a 500).
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for (username, password) in [("ascii", "p".repeat(72)), ("accents", "é".repeat(36))] {
            assert_eq!(password.len(), 72);
            let credentials = json!({"username": username, "password": password});
            let signup = client.post("/api/signup", credentials.clone()).await;
            assert_eq!(signup.status, 201, "{signup:?}");
            let login = client.post("/api/login", credentials).await;
            assert_eq!(login.status, 200, "{login:?}");
            let mut wrong = password.clone();
            wrong.pop();
            let login = client.post("/api/login", json!({"username": username, "password": wrong})).await;
            login.assert_error(401, "unauthorized");
        }
    }

    async fn usernames_are_unique_in_any_letter_case(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let first = json!({"username": "bob", "password": "password1"});
        assert_eq!(client.post("/api/signup", first).await.status, 201);

        let again = client.post("/api/signup", json!({"username": "BOB", "password": "password2"})).await;
        again.assert_error(409, "conflict");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);
    }

    async fn signup_refuses_bad_usernames_and_passwords_and_stores_nothing(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for (username, password, field) in [
            ("ab", "password1", "Username"),
            (&*"a".repeat(33), "password1", "Username"),
            ("with space", "password1", "Username"),
            ("émile", "password1", "Username"),
            ("carol", "short", "Password"),
            ("carol", &*"p".repeat(73), "Password"),
        ] {
            let reply = client.post("/api/signup", json!({"username": username, "password": password})).await;
            reply.assert_error(400, "validation_failed");
            assert!(reply.body["error"].as_str().unwrap().starts_with(field), "{reply:?}");
        }
        for body in [json!({}), json!({"username": "carol"}), json!({"username": 5, "password": "password1"})] {
            client.post("/api/signup", body).await.assert_error(400, "bad_request");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);
    }

    async fn wrong_password_and_unknown_user_get_the_same_401(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        client.sign_up_and_log_in("dave").await;
        let mut stranger = server.client();

        let wrong = stranger.post("/api/login", json!({"username": "dave", "password": "wrong"})).await;
        let unknown = stranger.post("/api/login", json!({"username": "nobody", "password": "correct horse"})).await;
        wrong.assert_error(401, "unauthorized");
        unknown.assert_error(401, "unauthorized");
        assert_eq!(wrong.body, unknown.body, "one message for both");
        assert!(stranger.cookie.is_none());
        assert!(wrong.header("set-cookie").is_none() && unknown.header("set-cookie").is_none());
    }

    async fn logout_is_idempotent_and_answers_get_and_post(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for _ in 0..2 {
            let reply = client.get("/api/logout").await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body, json!({"message": "Logged out successfully"}));
        }
        client.sign_up_and_log_in("erin").await;
        let reply = client.post("/api/logout", json!({})).await;
        assert_eq!(reply.status, 200);
        assert!(client.cookie.is_none(), "the cookie is cleared");
        client.get("/api/conversations").await.assert_error(401, "unauthorized");
    }
}
