//! Errors the framework raises itself come out in the SPEC's JSON shape too.

use awc::http::Method;
use serde_json::json;

use crate::support::{Server, api_tests, settings};

api_tests! {
    async fn unknown_routes_are_json_404s(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        // `/` and `/api` are the index (tests/api/index.rs); `/api/` is not.
        for path in ["/api/", "/index.html", "/api/nope", "/api/conversations/1/nope", "/favicon.ico"] {
            client.get(path).await.assert_error(404, "not_found");
        }
    }

    async fn head_answers_where_get_does(db) {
        let server = Server::start(settings(&db, &[])).await;
        let reply = server.client().send(Method::HEAD, "/api/test", None, &[]).await;
        assert_eq!(reply.status, 200);
    }

    async fn wrong_methods_are_json_405s(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for (method, path) in [
            (Method::POST, "/api/test"),
            (Method::GET, "/api/signup"),
            (Method::DELETE, "/api/login"),
            (Method::DELETE, "/api/conversations"),
            (Method::GET, "/api/conversations/1"),
            (Method::PUT, "/api/conversations/1/messages"),
        ] {
            client.send(method, path, None, &[]).await.assert_error(405, "method_not_allowed");
        }
    }

    async fn malformed_bodies_are_json_400s(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for body in ["{", "not json", "[1, 2]", "[\"alice\", \"password1\"]", "\"text\"", "null", "{\"username\": \"a\"} trailing"] {
            let reply = client.send(Method::POST, "/api/signup", Some(body.to_owned()), &[]).await;
            reply.assert_error(400, "bad_request");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);
    }

    async fn bodies_that_are_not_json_are_415s(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let body = json!({"username": "alice", "password": "password1"}).to_string();
        for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"] {
            let reply = client
                .send(Method::POST, "/api/signup", Some(body.clone()), &[("Content-Type", content_type)])
                .await;
            reply.assert_error(415, "unsupported_media_type");
        }
        let charset = client
            .send(Method::POST, "/api/signup", Some(body), &[("Content-Type", "application/json; charset=utf-8")])
            .await;
        assert_eq!(charset.status, 201, "{charset:?}");
    }

    async fn bodies_over_the_limit_are_413s(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__LIMITS__MAX_BODY_BYTES", "1024")])).await;
        let mut client = server.client();
        let big = json!({"username": "alice", "password": "x".repeat(2_000)});
        client.post("/api/signup", big).await.assert_error(413, "payload_too_large");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);
    }
}
