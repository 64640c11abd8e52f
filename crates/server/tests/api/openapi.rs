//! The OpenAPI document at `/api/openapi.json`: valid OpenAPI 3.1, and true to what the
//! server serves.
//!
//! The document is validated offline against the OpenAPI Initiative's JSON Schemas for
//! OpenAPI 3.1, vendored in `openapi-schemas/` (Apache License 2.0; copied unchanged
//! from the `openapi-spec-validator` and `openapi-schema-validator` wheels on PyPI, see
//! the README there).

use std::collections::BTreeSet;

use awc::http::Method;
use awc::http::header::{CONTENT_TYPE, COOKIE};
use chatbot_domain::MessageText;
use serde_json::{Map, Value, json};

use crate::support::{Client, Server, api_tests, settings};

const OAS_SCHEMA: &str = include_str!("openapi-schemas/oas-3.1-schema.json");
const OAS_DIALECT: &str = include_str!("openapi-schemas/oas-3.1-dialect-base.json");
const OAS_META: &str = include_str!("openapi-schemas/oas-3.1-meta-base.json");

/// Where the site's routes are registered: `/` first, then the API's, in the `/api`
/// scope.
const ROUTES_SOURCE: &str = include_str!("../../../http/src/routes/mod.rs");

/// Where ROUTES_SOURCE opens the `/api` scope.
const API_SCOPE: &str = "web::scope(\"/api\")";

/// The methods an OpenAPI path item can hold: all that the server is probed with.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every error code of SPEC §2, plus the bot's and the body timeout's.
const SPEC_CODES: [&str; 15] = [
    "bad_request",
    "validation_failed",
    "invalid_token",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "rate_limited",
    "internal",
    "bot_unavailable",
    "unavailable",
];

/// Paths a route could plausibly be added under without being documented; each must be
/// a 404 for every method unless the document lists it (`{id}` gets a real id).
const CANDIDATE_PATHS: [&str; 24] = [
    "/",
    "/api",
    "/api/",
    "/api/test/",
    "/api/conversations/",
    "/api/conversations/{id}/",
    "/api/conversations/{id}/messages/{id}",
    "/api/conversations/{id}/title",
    "/api/messages",
    "/api/messages/{id}",
    "/api/users",
    "/api/users/{id}",
    "/api/me",
    "/api/session",
    "/api/sessions",
    "/api/openapi.yaml",
    "/api/openapi",
    "/api/docs/",
    "/api/swagger-ui",
    "/api/metrics",
    "/metrics",
    "/health",
    "/openapi.json",
    "/docs",
];

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A validator of whole OpenAPI 3.1 documents that also checks every Schema Object
/// against the OpenAPI 3.1 dialect: the published `schema-base` (`schema.json` with its
/// `$dynamicRef: #meta` bound to the dialect), built here from the vendored files.
fn openapi_validator() -> jsonschema::Validator {
    let schema_base = json!({
        "$id": "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07",
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "https://spec.openapis.org/oas/3.1/schema/2022-10-07",
        "properties": {"jsonSchemaDialect": {"$ref": "#/$defs/dialect"}},
        "$defs": {
            "dialect": {"const": "https://spec.openapis.org/oas/3.1/dialect/base"},
            "schema": {
                "$dynamicAnchor": "meta",
                "$ref": "https://spec.openapis.org/oas/3.1/dialect/base",
                "properties": {"$schema": {"$ref": "#/$defs/dialect"}}
            }
        }
    });
    let resources = [OAS_SCHEMA, OAS_DIALECT, OAS_META].map(parse);
    let mut registry = jsonschema::Registry::new();
    for resource in resources {
        let id = resource["$id"].as_str().unwrap().to_owned();
        registry = registry.add(id, resource).unwrap();
    }
    let registry = registry.prepare().unwrap();
    jsonschema::options()
        .offline()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&schema_base)
        .unwrap()
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

/// Every operation of `document`: (path, method, operation).
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((path.clone(), method.to_owned(), operation.clone()));
            }
        }
    }
    found
}

/// The schema `reference` (`#/components/schemas/X`) points to.
fn resolve<'d>(document: &'d Value, reference: &str) -> &'d Value {
    let name = reference.strip_prefix("#/components/schemas/").unwrap();
    &document["components"]["schemas"][name]
}

/// Whether `operation` needs the session cookie (an empty alternative makes it optional).
fn requires_login(operation: &Value) -> bool {
    operation["security"]
        .as_array()
        .is_some_and(|alternatives| !alternatives.is_empty() && !alternatives.contains(&json!({})))
}

api_tests! {
    async fn the_document_is_valid_openapi_3_1_and_documents_every_error(db) {
        let server = Server::start(settings(&db, &[])).await;
        let reply = server.client().get("/api/openapi.json").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let document = reply.body;
        assert_eq!(document, serde_json::to_value(chatbot_http::openapi::openapi()).unwrap());

        let validator = openapi_validator();
        assert_eq!(errors(&validator, &document), Vec::<String>::new());
        // The validator is not vacuous: it sees into operations and into schemas.
        for (pointer, wrong) in [
            ("/info", json!(null)),
            ("/paths/~1api~1test/get/responses", json!("ok")),
            ("/paths/~1api~1conversations/get/parameters/0/in", json!("body")),
            ("/components/schemas/Error/type", json!(12)),
            ("/components/schemas/Error/required", json!("error")),
            ("/components/securitySchemes/session/in", json!("body")),
        ] {
            let mut broken = document.clone();
            *broken.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = wrong;
            assert!(!errors(&validator, &broken).is_empty(), "{pointer} should be invalid");
        }

        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
        let scheme = &document["components"]["securitySchemes"]["session"];
        assert_eq!(
            (&scheme["type"], &scheme["in"], &scheme["name"]),
            (&json!("apiKey"), &json!("cookie"), &json!("session")),
        );
        let codes = &document["components"]["schemas"]["Error"]["properties"]["code"]["enum"];
        let codes: BTreeSet<&str> = codes.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(codes, BTreeSet::from(SPEC_CODES));

        let error_content = json!({"$ref": "#/components/schemas/Error"});
        for (path, method, operation) in operations(&document) {
            let responses = operation["responses"].as_object().unwrap();
            let at = format!("{method} {path}");
            let mut expected = vec!["500", "503"];
            if requires_login(&operation) {
                expected.push("401");
            }
            // An API id that is no resource of the user's is a 404; the web client's
            // page serves any id, and the client says what it finds.
            if path.contains("{id}") && path.starts_with("/api") {
                expected.push("404");
            }
            if matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                expected.push("403");
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "408", "413", "415"]);
                let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
                let body = resolve(&document, schema["$ref"].as_str().unwrap());
                assert!(body["examples"][0].is_object(), "{at}: the body has an example");
            }
            for status in expected {
                assert!(responses.contains_key(status), "{at} documents {status}");
            }
            // The WebSocket's success is its upgrade.
            let success = |s: &String| s.starts_with('2') || (path == "/api/ws" && s == "101");
            assert!(responses.keys().any(success), "{at} documents its success");
            for (status, response) in responses {
                let content = &response["content"];
                if method == "head" {
                    assert!(content.is_null(), "{at} {status}: HEAD answers carry no body");
                } else if status.as_str() >= "400" {
                    assert_eq!(content["application/json"]["schema"], error_content, "{at} {status}");
                    assert!(!response["description"].as_str().unwrap().is_empty());
                }
            }
        }

        // The pages of SPEC's pagination issue.
        let names = |path: &str| -> Vec<(String, String)> {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["name"].as_str().unwrap().to_owned(), p["in"].as_str().unwrap().to_owned()))
                .collect()
        };
        let query = |name: &str| (name.to_owned(), "query".to_owned());
        let id = ("id".to_owned(), "path".to_owned());
        let tag = ("If-None-Match".to_owned(), "header".to_owned());
        assert_eq!(names("/api/conversations"), [query("limit"), query("before"), query("include"), tag.clone()]);
        assert_eq!(names("/api/conversations/{id}/messages"), [id, query("limit"), query("before"), tag]);
        // Revalidation (issue 18): 304 and the tag are documented where they are sent.
        for path in ["/api/conversations", "/api/conversations/{id}/messages"] {
            let responses = &document["paths"][path]["get"]["responses"];
            assert!(responses["200"]["headers"]["ETag"].is_object(), "{path}");
            assert!(responses["304"]["headers"]["ETag"].is_object(), "{path}");
        }
        let listing = &document["paths"]["/api/conversations"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let listing = resolve(&document, listing["$ref"].as_str().unwrap());
        assert_eq!(listing["anyOf"].as_array().unwrap().len(), 3, "the list and both page shapes");

        server.stop().await;
    }

    async fn the_document_names_the_configured_cookie_and_has_a_page(db) {
        let server = Server::start(settings(&db, &[("CHATBOT__SESSION__COOKIE_NAME", "sid")])).await;
        let mut client = server.client();
        let document = client.get("/api/openapi.json").await.body;
        assert_eq!(document["components"]["securitySchemes"]["session"]["name"], "sid");
        client.sign_up_and_log_in("alice").await;
        assert!(client.cookie.as_deref().unwrap().starts_with("sid="), "{:?}", client.cookie);

        let http = awc::Client::default();
        let mut page = http.get(format!("{}/api/docs", server.base)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers().get(CONTENT_TYPE).unwrap(), "text/html; charset=utf-8");
        assert_eq!(page.headers().get("x-frame-options").unwrap(), "DENY");
        let html = String::from_utf8(page.body().limit(1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(html.contains("<script"), "{html}");
        assert!(html.contains("\"title\":\"Chatbot API\""), "the page embeds the document");
        server.stop().await;
    }

    async fn the_documents_follow_the_configured_message_limit(db) {
        // `limits.max_message_chars` is configurable: the document served, and the page
        // showing it, say the running limit, and the server holds to it.
        let server = Server::start(settings(&db, &[("CHATBOT__LIMITS__MAX_MESSAGE_CHARS", "50")])).await;
        let mut client = server.client();
        let document = client.get("/api/openapi.json").await.body;
        assert_eq!(errors(&openapi_validator(), &document), Vec::<String>::new());
        let text = &document["components"]["schemas"]["NewMessage"]["properties"]["text"];
        assert_eq!(text["anyOf"][0]["maxLength"], 50, "{text}");
        assert!(text["description"].as_str().unwrap().contains(" 1 to 50 characters "), "{text}");
        let mut default = serde_json::to_value(chatbot_http::openapi::openapi()).unwrap();
        default["components"]["schemas"]["NewMessage"]["properties"]["text"] = text.clone();
        assert_eq!(document, default, "only the limit differs from the default document");

        let http = awc::Client::default();
        let mut page = http.get(format!("{}/api/docs", server.base)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = String::from_utf8(page.body().limit(1 << 20).await.unwrap().to_vec()).unwrap();
        let embedded = html
            .split_once(r#"<script id="api-reference" type="application/json">"#)
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map(|(json, _)| parse(json))
            .unwrap_or_else(|| panic!("the page embeds the document: {html}"));
        assert_eq!(embedded, document, "the page shows the document served");

        client.sign_up_and_log_in("limited").await;
        let conversation = client.create_conversation("limited").await;
        let messages = format!("/api/conversations/{conversation}/messages");
        let text = jsonschema::validator_for(text).unwrap();
        for chars in [50, 51] {
            let value = "t".repeat(chars);
            let reply = client.post(&messages, json!({"text": value})).await;
            if chars <= 50 {
                assert_eq!(reply.status, 201, "{chars} characters: {reply:?}");
                assert!(text.is_valid(&json!(value)), "{chars} characters");
            } else {
                reply.assert_error(400, "validation_failed");
                assert!(!text.is_valid(&json!(value)), "{chars} characters");
            }
        }
        server.stop().await;
    }

    async fn a_405_allows_exactly_the_methods_the_document_lists(db) {
        // RFC 9110: a 405 carries `Allow`. schemathesis' `unsupported_method` check
        // found them without one; the routes' lists must match the document's.
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let document = client.get("/api/openapi.json").await.body;
        client.sign_up_and_log_in("allowed").await;
        let id = client.create_conversation("allowed").await;
        for (path, item) in document["paths"].as_object().unwrap() {
            let mut documented: Vec<String> = METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| method.to_uppercase())
                .collect();
            documented.sort();
            let concrete = path.replace("{id}", &id.to_string()).replace("{message_id}", "1");
            for method in METHODS.iter().filter(|method| item.get(**method).is_none()) {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let reply = client.send(method.clone(), &concrete, None, &[]).await;
                assert_eq!(reply.status, 405, "{method} {path}: {reply:?}");
                let allow = reply.header("allow").unwrap_or_else(|| panic!("{method} {path}: no Allow"));
                let mut allowed: Vec<String> = allow.split(',').map(|m| m.trim().to_owned()).collect();
                allowed.sort();
                assert_eq!(allowed, documented, "{method} {path}: Allow: {allow}");
            }
        }
        server.stop().await;
    }

    async fn the_document_s_input_rules_are_the_server_s(db) {
        // The fuzzer holds the server to the document: a request the document calls
        // valid must be accepted, one it calls invalid refused. Here the edges of each
        // rule, checked both ways: the document's own schema (its `pattern`,
        // `minLength`, ...) against what the server answers. Two gaps are JSON Schema's
        // and are said in the document's words instead: a password's limit is 72 bytes
        // (the schema can only count characters), and a text's most characters are
        // counted after trimming (a pattern that counts them would be too big to run).
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let document = client.get("/api/openapi.json").await.body;
        client.sign_up_and_log_in("rules").await;
        let conversation = client.create_conversation("rules").await;
        let schemas = &document["components"]["schemas"];
        let validator = |schema: &Value| jsonschema::validator_for(schema).unwrap();
        let mut mismatches = Vec::new();

        let long_name = "n".repeat(100);
        let names = [
            "a", " a ", "\t\n a \r\n", "a b", "a\tb", "a\nb", "\u{85}a\u{85}", "\u{a0}a\u{3000}",
            "\u{feff}a", "\u{200b}", "a\u{7f}", "a\u{9f}b", "a\u{2028}b", "\u{2028}a\u{2029}", "é",
            "😀", "", " ", "\u{3000}", "\u{0}", "a\u{0}", &long_name, &format!("  {long_name}\n"),
            &format!("{long_name}n"), &"😀".repeat(100), &"😀".repeat(101),
        ];
        let rename = validator(&schemas["RenameConversation"]["properties"]["name"]);
        let create = validator(&schemas["NewConversation"]["properties"]["name"]);
        for name in names {
            let path = format!("/api/conversations/{conversation}");
            let renamed = client.put(&path, json!({"name": name})).await.status;
            if rename.is_valid(&json!(name)) != (renamed == 200) {
                mismatches.push(format!("rename to {name:?}: answered {renamed}"));
            }
            let created = client.post("/api/conversations", json!({"name": name})).await.status;
            if create.is_valid(&json!(name)) != (created == 201) {
                mismatches.push(format!("create named {name:?}: answered {created}"));
            }
        }
        assert!(create.is_valid(&json!(null)), "a null name is the default name");

        let long_text = "t".repeat(MessageText::DEFAULT_MAX_CHARS);
        let texts = [
            "hi", " hi ", "\n\t hi", "a\tb\nc", "\u{feff}", "\u{85}", "\u{7f}", "\u{0}", "a\u{0}b", "",
            " ", "\t\r\n", "\u{2003}", &long_text, &format!("{long_text}t"),
        ];
        let text = validator(&schemas["NewMessage"]["properties"]["text"]);
        let messages = format!("/api/conversations/{conversation}/messages");
        for value in texts {
            let sent = client.post(&messages, json!({"text": value})).await.status;
            if text.is_valid(&json!(value)) != (sent == 201) {
                mismatches.push(format!("text {:?}: answered {sent}", value.get(..20).unwrap_or(value)));
            }
        }
        // White space around a text of the most characters: the server trims it before
        // counting, and so does the document's padded shape, which sets no length: the
        // one gap, a padded text over the limit, is valid there and refused here.
        let padded = format!(" {long_text}\n");
        assert!(text.is_valid(&json!(padded)));
        assert_eq!(client.post(&messages, json!({"text": padded})).await.status, 201);
        let too_long = format!(" {long_text}t\n");
        assert!(text.is_valid(&json!(too_long)), "the gap");
        client.post(&messages, json!({"text": too_long})).await.assert_error(400, "validation_failed");

        let username = validator(&schemas["NewAccount"]["properties"]["username"]);
        let password = validator(&schemas["NewAccount"]["properties"]["password"]);
        let good_password = "correct horse";
        let usernames = [
            "abc", "ab", "a.b-c_D9", "a b", "abc\n", "\nabc", " abc", "é_abc", "abc!", &"u".repeat(32),
            &"v".repeat(33), "",
        ];
        for name in usernames {
            let reply = client.post("/api/signup", json!({"username": name, "password": good_password})).await;
            if username.is_valid(&json!(name)) != (reply.status == 201) {
                mismatches.push(format!("username {name:?}: answered {}", reply.status));
            }
        }
        let passwords = [
            "1234567", "12345678", " 1234567", "        ", &"p".repeat(72), &"p".repeat(73),
            &"é".repeat(36), &"\u{0}".repeat(8),
        ];
        for (index, value) in passwords.into_iter().enumerate() {
            let name = format!("password{index}");
            let reply = client.post("/api/signup", json!({"username": name, "password": value})).await;
            if password.is_valid(&json!(value)) != (reply.status == 201) {
                mismatches.push(format!("password {value:?}: answered {}", reply.status));
            }
        }
        // The gap: 37 two-byte characters are 74 bytes, over bcrypt's limit, yet only
        // 37 characters; the document says "bytes" in words.
        let wide = "é".repeat(37);
        assert!(password.is_valid(&json!(wide)));
        client
            .post("/api/signup", json!({"username": "wide", "password": wide}))
            .await
            .assert_error(400, "validation_failed");

        let before = document["paths"]["/api/conversations"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "before")
            .unwrap();
        let cursor = validator(&before["schema"]);
        let cursors = [
            // As the query string carries them (`%2B` is a `+`).
            ("1795586834123_2", "1795586834123_2"), ("0_1", "0_1"), ("%2B1_1", "+1_1"), ("01_1", "01_1"),
            ("1_01", "1_01"), ("1_0", "1_0"), ("-1_1", "-1_1"), ("1", "1"), ("_", "_"), ("1_", "1_"),
            ("999999999999999_1", "999999999999999_1"), ("1000000000000000_1", "1000000000000000_1"),
            ("1_999999999999999999", "1_999999999999999999"), ("1_1000000000000000000", "1_1000000000000000000"),
            ("1_1%20", "1_1 "), ("1.5_1", "1.5_1"), ("%EF%BC%91_1", "１_1"),
        ];
        for (encoded, value) in cursors {
            let status = client.get(&format!("/api/conversations?before={encoded}")).await.status;
            if cursor.is_valid(&json!(value)) != (status == 200) {
                mismatches.push(format!("before={value:?}: answered {status}"));
            }
        }

        assert!(mismatches.is_empty(), "the document and the server disagree:\n{}", mismatches.join("\n"));
        server.stop().await;
    }

    async fn every_route_served_is_documented_and_every_documented_route_is_served(db) {
        // Three checks, none of which trusts a list written by hand:
        //
        // 1. The paths registered in crates/http/src/routes/mod.rs (every
        //    `resource("...")` there: before the `/api` scope is opened, the site's own;
        //    after, under `/api`) are exactly the documented paths: a route added
        //    without documentation fails here, before any request.
        // 2. Every (path, method) pair of the document, with a real conversation's id
        //    in `{id}` and the documented example as the body, is answered with neither
        //    404 nor 405, with a status the document lists for it, and with a body its
        //    schema accepts (the list and page variants of the listings too).
        // 3. Every other method on a documented path is a 405, and every method on a
        //    set of plausible undocumented paths is a 404: the router serves nothing
        //    the document does not list. The server tells served from unserved itself:
        //    unknown paths are 404 `not_found` and known paths with another method are
        //    405 `method_not_allowed` (tests/api/errors.rs).
        let server = Server::start(settings(&db, &[])).await;
        let document = server.client().get("/api/openapi.json").await.body;
        let documented: BTreeSet<String> = document["paths"].as_object().unwrap().keys().cloned().collect();

        let resources = |source: &str, scope: &str| -> Vec<String> {
            source
                .split("resource(\"")
                .skip(1)
                .filter_map(|rest| rest.split_once('"'))
                .map(|(path, _)| format!("{scope}{path}"))
                .collect()
        };
        let (site, api) = ROUTES_SOURCE.split_once(API_SCOPE).expect("routes/mod.rs opens the /api scope");
        let site = resources(site, "");
        let api = resources(api, "/api");
        assert_eq!(site, ["/", "/login", "/c/{id}", "/settings", "/verify", "/reset", "/assets/{name}"], "the site's own routes: the web client");
        assert!(api.len() >= 10 && api.contains(&"/api".to_owned()), "the API's routes: {api:?}");
        let registered: BTreeSet<String> = site.into_iter().chain(api).collect();
        assert_eq!(registered, documented, "registered routes vs the document");

        let mut prober = server.client();
        prober.sign_up_and_log_in("prober").await;
        let mut failures = Vec::new();
        let mut probes = 0;
        let paths = documented.iter().map(String::as_str).chain(CANDIDATE_PATHS);
        for path in paths.collect::<BTreeSet<_>>() {
            for method in METHODS {
                let operation = document["paths"][path].get(method);
                let mut queries = vec![String::new()];
                if let Some(parameters) = operation.and_then(|o| o["parameters"].as_array()) {
                    let named = |name: &str| parameters.iter().any(|p| p["name"] == name && p["in"] == "query");
                    if named("limit") {
                        queries.push("?limit=1".to_owned());
                    }
                    if named("include") {
                        queries.push("?limit=1&include=messages".to_owned());
                    }
                }
                for query in queries {
                    probes += 1;
                    let outcome = probe(&server, &mut prober, &document, path, method, &query).await;
                    if let Err(failure) = outcome {
                        failures.push(failure);
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{} of {probes} probes failed:\n{}", failures.len(), failures.join("\n"));
        server.stop().await;
    }
}

/// Sends `method` to `path` (+ `query`) as the prober, and checks the answer against
/// the document.
async fn probe(
    server: &Server,
    prober: &mut Client,
    document: &Value,
    path: &str,
    method: &str,
    query: &str,
) -> Result<(), String> {
    // The probe of logout ends the prober's session: start another.
    if prober.get("/api/conversations?limit=1").await.status == 401 {
        prober.cookie = None;
        let login = json!({"username": "prober", "password": "correct horse"});
        assert_eq!(prober.post("/api/login", login).await.status, 200);
    }
    let mut concrete = path.to_owned();
    if path == "/api/me/sessions/{id}" {
        // Another session of the prober's, made for this probe alone (it ends it).
        let mut other = Client::new(&server.base);
        let login = json!({"username": "prober", "password": "correct horse"});
        assert_eq!(other.post("/api/login", login).await.status, 200);
        let listed = prober.get("/api/me/sessions").await;
        let sessions = listed.body.as_array().unwrap();
        let id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].to_string();
        concrete = path.replace("{id}", &id);
    } else if path == "/assets/{name}" {
        // An asset the page names.
        let mut page = awc::Client::default()
            .get(format!("{}/", server.base))
            .send()
            .await
            .unwrap();
        let page = page.body().await.unwrap();
        let page = String::from_utf8_lossy(&page);
        let (_, after) = page
            .split_once("\"/assets/")
            .expect("the page names an asset");
        let (name, _) = after.split_once('"').unwrap();
        concrete = path.replace("{name}", name);
    } else if path.contains("{id}") {
        // A conversation of the prober's own, with a message, made for this probe
        // alone (the probe may delete it).
        let id = prober.create_conversation("probed").await;
        let reply = prober
            .post(
                &format!("/api/conversations/{id}/messages"),
                json!({"text": "hello"}),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let message_id = reply.body[1]["id"].to_string();
        concrete = path
            .replace("{id}", &id.to_string())
            .replace("{message_id}", &message_id);
    }
    let operation = document["paths"]
        .get(path)
        .and_then(|item| item.get(method));
    let body = match operation {
        Some(operation) => example_body(document, operation),
        None => Some(json!({})),
    };
    let at = format!("{} {concrete}{query}", method.to_uppercase());

    let http = awc::Client::default();
    let method_ = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = http.request(method_, format!("{}{concrete}{query}", server.base));
    if let Some(cookie) = &prober.cookie {
        request = request.insert_header((COOKIE, cookie.clone()));
    }
    let mut response = match &body {
        Some(body) if !matches!(method, "get" | "head" | "delete" | "options" | "trace") => {
            request
                .insert_header((CONTENT_TYPE, "application/json"))
                .send_body(body.to_string())
                .await
        }
        _ => request.send().await,
    }
    .map_err(|error| format!("{at}: no answer: {error}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .body()
        .limit(10 << 20)
        .await
        .map_err(|e| format!("{at}: {e}"))?;
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let code = json
        .as_ref()
        .and_then(|j| j["code"].as_str())
        .unwrap_or_default()
        .to_owned();

    let documented_path = document["paths"].get(path).is_some();
    let Some(operation) = operation else {
        // Not documented: the router must not serve it.
        let expected = if documented_path {
            (405, "method_not_allowed")
        } else {
            (404, "not_found")
        };
        let fits = status == expected.0 && (method == "head" || code == expected.1);
        return if fits {
            Ok(())
        } else {
            Err(format!(
                "{at}: undocumented, yet answered {status} {code:?} (expected {expected:?})"
            ))
        };
    };
    if status == 404 || status == 405 {
        return Err(format!("{at}: documented, yet answered {status} {code:?}"));
    }
    let Some(response) = operation["responses"].get(status.to_string()) else {
        return Err(format!(
            "{at}: answered {status}, which the document does not list"
        ));
    };
    let Some(content) = response["content"].as_object() else {
        return if bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{at}: {status} documents no body, yet has one"))
        };
    };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let Some(documented) = content.get(media_type) else {
        return Err(format!(
            "{at}: {status} answered {content_type:?}, documented {:?}",
            content.keys()
        ));
    };
    if media_type != "application/json" {
        return Ok(());
    }
    let Some(json) = json else {
        return Err(format!("{at}: {status} is not JSON"));
    };
    let validator = response_validator(document, &documented["schema"]);
    let problems = errors(&validator, &json);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{at}: {status} does not fit its schema: {problems:?}\n  {json}"
        ))
    }
}

/// The first example of the operation's request body schema, if it has a body.
fn example_body(document: &Value, operation: &Value) -> Option<Value> {
    let schema = operation.get("requestBody")?["content"]["application/json"]["schema"].clone();
    let schema = match schema["$ref"].as_str() {
        Some(reference) => resolve(document, reference),
        None => &schema,
    };
    schema["examples"].get(0).cloned()
}

/// A JSON Schema validator for a response `schema` of the document: the document's
/// component schemas become `$defs`, where the references find them.
fn response_validator(document: &Value, schema: &Value) -> jsonschema::Validator {
    fn rebase(value: &mut Value) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get_mut("$ref") {
                    if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                        *reference = format!("#/$defs/{name}");
                    }
                }
                object.values_mut().for_each(rebase);
            }
            Value::Array(items) => items.iter_mut().for_each(rebase),
            _ => {}
        }
    }
    let mut defs = document["components"]["schemas"].clone();
    let mut schema = schema.clone();
    rebase(&mut defs);
    rebase(&mut schema);
    let mut root = Map::new();
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("$defs".into(), defs);
    root.insert("allOf".into(), json!([schema]));
    jsonschema::options()
        .offline()
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap()
}
