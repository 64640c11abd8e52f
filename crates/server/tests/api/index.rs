//! `GET /api`: the index that the API's address in the start-up log leads to (`/` is
//! the web client's, tests/api/web_client.rs).

use awc::http::Method;
use serde_json::json;

use crate::support::{Server, api_tests, settings};

api_tests! {
    async fn the_index_points_at_the_documentation_and_the_probes(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let expected = json!({
            "service": "chatbot",
            "version": env!("CARGO_PKG_VERSION"),
            "docs": "/api/docs",
            "openapi": "/api/openapi.json",
            "health": "/api/health",
            "ready": "/api/ready",
        });
        let reply = client.get("/api").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.body, expected);

        let head = client.send(Method::HEAD, "/api", None, &[]).await;
        assert_eq!(head.status, 200, "{head:?}");
        assert_eq!(head.header("content-type"), Some("application/json"));
        assert!(head.body.is_null(), "HEAD has no body: {head:?}");
        assert!(client.cookie.is_none(), "the index starts no session");

        // Every path it names is served.
        for (name, path) in expected.as_object().unwrap() {
            if name == "service" || name == "version" {
                continue;
            }
            let http = awc::Client::default();
            let response = http.get(format!("{}{}", server.base, path.as_str().unwrap())).send().await.unwrap();
            assert_eq!(response.status(), 200, "{name}: {path}");
        }
        server.stop().await;
    }

    async fn the_index_takes_get_and_head_only(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        for path in ["/api", "/"] {
            for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS, Method::TRACE] {
                let reply = client.send(method.clone(), path, None, &[]).await;
                reply.assert_error(405, "method_not_allowed");
                assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method} {path}");
            }
        }
        // Only those two: the rest of the site is still unknown.
        for path in ["/api/", "/index.html", "/api/index"] {
            client.get(path).await.assert_error(404, "not_found");
        }
        server.stop().await;
    }

    async fn the_document_lists_the_index(db) {
        let server = Server::start(settings(&db, &[])).await;
        let document = server.client().get("/api/openapi.json").await.body;
        let item = document["paths"]["/api"].as_object().expect("/api is documented");
        let mut methods: Vec<&str> = item.keys().map(String::as_str).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["get", "head"]);
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(schema["$ref"], "#/components/schemas/Index");
        let index = &document["components"]["schemas"]["Index"];
        let mut required: Vec<&str> = index["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        required.sort_unstable();
        assert_eq!(required, ["docs", "health", "openapi", "ready", "service", "version"]);
        server.stop().await;
    }
}
