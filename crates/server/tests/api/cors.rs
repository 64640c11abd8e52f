//! CORS: the configured origins, with credentials; nobody else.

use awc::http::Method;

use crate::support::{Server, api_tests, settings};

api_tests! {
    async fn a_preflight_from_an_allowed_origin_may_send_credentials(db) {
        let server = Server::start(settings(&db, &[])).await;
        let reply = server
            .client()
            .send(Method::OPTIONS, "/api/conversations", None, &[
                ("Origin", "http://localhost:3000"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ])
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:3000"));
        assert_eq!(reply.header("access-control-allow-credentials"), Some("true"));
        assert!(reply.header("access-control-allow-methods").unwrap().contains("POST"));
    }

    async fn other_origins_get_no_allow_origin_header(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let preflight = client
            .send(Method::OPTIONS, "/api/conversations", None, &[
                ("Origin", "http://evil.example"),
                ("Access-Control-Request-Method", "POST"),
            ])
            .await;
        assert!(preflight.header("access-control-allow-origin").is_none(), "{preflight:?}");
        preflight.assert_error(403, "forbidden");

        let simple = client.send(Method::GET, "/api/test", None, &[("Origin", "http://evil.example")]).await;
        assert_eq!(simple.status, 200);
        assert!(simple.header("access-control-allow-origin").is_none());
        let allowed = client.send(Method::GET, "/api/test", None, &[("Origin", "http://localhost:5173")]).await;
        assert_eq!(allowed.header("access-control-allow-origin"), Some("http://localhost:5173"));
    }

    async fn the_allow_list_comes_from_configuration(db) {
        let custom = settings(&db, &[("CHATBOT__CORS__ALLOWED_ORIGINS", "https://chat.example.com,https://admin.example.com")]);
        let server = Server::start(custom).await;
        let mut client = server.client();
        for (origin, allowed) in [
            ("https://chat.example.com", true),
            ("https://admin.example.com", true),
            ("http://localhost:3000", false),
        ] {
            let reply = client
                .send(Method::OPTIONS, "/api/conversations", None, &[("Origin", origin), ("Access-Control-Request-Method", "GET")])
                .await;
            assert_eq!(reply.header("access-control-allow-origin") == Some(origin), allowed, "{origin}: {reply:?}");
        }
    }
}
