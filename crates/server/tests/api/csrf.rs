//! The CSRF defence: pages on foreign origins cannot change data.

use awc::http::Method;
use serde_json::json;

use crate::support::{Server, api_tests, settings};

const EVIL: (&str, &str) = ("Origin", "http://evil.example");

api_tests! {
    async fn writes_from_a_foreign_origin_are_refused_and_change_nothing(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.create_conversation("kept").await;
        let body = || Some(json!({"name": "hijacked", "text": "hi", "username": "mallory", "password": "correct horse", "display_name": "hijacked", "current_password": "correct horse", "new_password": "hijacked!", "email": "mallory@example.com", "token": "t"}).to_string());

        for (method, path) in [
            (Method::POST, "/api/signup".to_owned()),
            (Method::POST, "/api/login".to_owned()),
            (Method::POST, "/api/conversations".to_owned()),
            (Method::PUT, format!("/api/conversations/{id}")),
            (Method::POST, format!("/api/conversations/{id}/messages")),
            (Method::DELETE, format!("/api/conversations/{id}")),
            (Method::POST, "/api/logout".to_owned()),
            (Method::PATCH, "/api/me".to_owned()),
            (Method::DELETE, "/api/me".to_owned()),
            (Method::POST, "/api/me/password".to_owned()),
            (Method::DELETE, "/api/me/sessions".to_owned()),
            (Method::DELETE, "/api/me/sessions/1".to_owned()),
            (Method::POST, "/api/me/email/verify".to_owned()),
            (Method::POST, "/api/email/verify".to_owned()),
            (Method::POST, "/api/password/forgot".to_owned()),
            (Method::POST, "/api/password/reset".to_owned()),
        ] {
            let reply = alice.send(method.clone(), &path, body(), &[EVIL]).await;
            reply.assert_error(403, "forbidden");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 0);
        assert_eq!(alice.get("/api/me").await.body["display_name"], "alice");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM sessions"), 1);
        let listed = alice.get("/api/conversations").await;
        assert_eq!(listed.status, 200, "still logged in");
        assert_eq!(listed.body[0]["name"], "kept");
    }

    async fn another_site_cannot_log_a_user_out_with_a_link(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        for headers in [&[EVIL][..], &[("Sec-Fetch-Site", "cross-site")][..]] {
            let reply = alice.send(Method::GET, "/api/logout", None, headers).await;
            reply.assert_error(403, "forbidden");
            assert_eq!(alice.get("/api/me").await.status, 200, "still logged in after {headers:?}");
        }
        // The page's own logout, and one without a browser's headers, log out.
        let own = alice.send(Method::GET, "/api/logout", None, &[("Sec-Fetch-Site", "same-origin")]).await;
        assert_eq!(own.status, 200);
        alice.get("/api/me").await.assert_error(401, "unauthorized");
        alice.sign_up_and_log_in("bob").await;
        assert_eq!(alice.get("/api/logout").await.status, 200);
        alice.get("/api/me").await.assert_error(401, "unauthorized");
    }

    async fn forwarding_headers_name_the_servers_origin_only_from_trusted_proxies(db) {
        let signup = |name: &str| Some(json!({"username": name, "password": "password1"}).to_string());
        let claims: [&[(&str, &str)]; 3] = [
            &[EVIL, ("X-Forwarded-Host", "evil.example")],
            &[EVIL, ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "http")],
            &[EVIL, ("Forwarded", "host=evil.example;proto=http")],
        ];
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for headers in claims {
            let reply = client.send(Method::POST, "/api/signup", signup("mallory"), headers).await;
            reply.assert_error(403, "forbidden");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);

        // Behind a trusted proxy, they say how the browser reached the service.
        let proxied = Server::start(settings(&db, &[("CHATBOT__SERVER__TRUSTED_PROXIES", "127.0.0.1")])).await;
        let mut client = proxied.client();
        for (index, headers) in claims.into_iter().enumerate() {
            let reply = client.send(Method::POST, "/api/signup", signup(&format!("viaproxy{index}")), headers).await;
            assert_eq!(reply.status, 201, "{headers:?}: {reply:?}");
        }
    }

    async fn a_configured_public_url_is_the_servers_own_origin(db) {
        let public = [("CHATBOT__APP__PUBLIC_URL", "https://chat.example.com:443/")];
        let server = Server::start(settings(&db, &public)).await;
        let mut client = server.client();
        let body = json!({"username": "viapublic", "password": "password1"}).to_string();
        let reply = client.send(Method::POST, "/api/signup", Some(body), &[("Origin", "https://chat.example.com")]).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        // The configured origin is the server's own: not the scheme, nor the `Host`
        // a request names.
        for origin in ["http://chat.example.com", server.base.as_str()] {
            let other = json!({"username": "viaother", "password": "password1"}).to_string();
            let refused = client.send(Method::POST, "/api/signup", Some(other), &[("Origin", origin)]).await;
            refused.assert_error(403, "forbidden");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);
    }

    async fn the_default_public_url_leaves_the_request_s_own_origin_trusted(db) {
        // As when the server runs from the repository, whose config/default.toml says
        // the default again: the client at http://127.0.0.1:5000 must still write.
        let default = [("CHATBOT__APP__PUBLIC_URL", "http://localhost:5000")];
        let server = Server::start(settings(&db, &default)).await;
        let mut client = server.client();
        let body = json!({"username": "viaown", "password": "password1"}).to_string();
        let reply = client.send(Method::POST, "/api/signup", Some(body), &[("Origin", server.base.as_str())]).await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }

    async fn reads_from_any_origin_and_writes_from_trusted_ones_pass(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        assert_eq!(client.send(Method::GET, "/api/test", None, &[EVIL]).await.status, 200);

        let own = server.base.clone();
        for (name, origin) in [("viaown", own.as_str()), ("viareact", "http://localhost:3000"), ("viavite", "http://localhost:5173")] {
            let body = json!({"username": name, "password": "password1"}).to_string();
            let reply = client.send(Method::POST, "/api/signup", Some(body), &[("Origin", origin)]).await;
            assert_eq!(reply.status, 201, "{origin}: {reply:?}");
        }
        let without = client.post("/api/signup", json!({"username": "noorigin", "password": "password1"})).await;
        assert_eq!(without.status, 201, "clients that send no Origin (curl, servers) are not browsers");
    }
}
