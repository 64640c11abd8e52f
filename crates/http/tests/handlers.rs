//! The auth and conversation handlers on mockall mocks of the domain's use cases: the
//! whole app (routing, middleware, the session cookie, JSON errors) in process, with
//! no database and no socket.
//!
//! Each test says what the use cases answer, then checks the status and body of the
//! reply and what the use cases were asked. A mock without an expectation for a call
//! fails the test if the call happens, so "no use case is called" needs no more than
//! leaving it out; `.times(..)` and `.never()` are checked when the app is dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use chatbot_domain::services::{EventHub, HubSettings};
use chatbot_domain::use_cases::{MockAccounts, MockChat, MockHealth, MockSessions};
use chatbot_domain::{
    BotError, Conversation, ConversationCursor, ConversationId, ConversationName,
    ConversationWithMessages, Delta, Error, Exchange, Message, MessageId, MessageStatus, Page,
    PageRequest, PageSize, ReplyEvent, ReplyFailure, ReplyFeed, Revision, Sender, SessionId,
    SessionKey, SessionRecord, StartedReply, StorageError, Timestamp, User, UserId, Username,
};
use chatbot_http::{Api, HttpConfig, Limit, RateLimitConfig, RateLimiters, Services};
use serde_json::{Value, json};

/// The user the tests log in as.
const ALICE: UserId = UserId::new(7);
/// The key the sessions use case gives Alice's session.
const ALICE_KEY: &str = "alice-session-key";
/// actix-session's state of a session logged in as Alice, as the sessions use case
/// stores it: its entries as a JSON object, each value JSON-encoded in a string.
const ALICE_STATE: &str = r#"{"user_id":"7"}"#;
const COOKIE_NAME: &str = "chatbot_session";
/// Lower than the default, so that a test can go over it cheaply.
const MAX_MESSAGE_CHARS: usize = 100;

/// 2026-11-25T06:07:14.123Z, and a second and two seconds later.
const T0: i64 = 1_795_586_834_123;
const T1: i64 = T0 + 1_000;
const T2: i64 = T0 + 2_000;

/// The use cases the app runs on; health is never called by these handlers.
#[derive(Default)]
struct Mocks {
    accounts: MockAccounts,
    chat: MockChat,
    sessions: MockSessions,
}

impl Mocks {
    /// Alice can log in (with any password), and her session's key resumes her
    /// session until the test ends: see [`log_in`].
    fn with_alice() -> Self {
        let mut mocks = Self::default();
        mocks
            .accounts
            .expect_verify_credentials()
            .withf(|username, _| username == "alice")
            .returning(|_, _| Ok(alice()));
        mocks
            .sessions
            .expect_start()
            .withf(|user, _, state| *user == Some(ALICE) && state == ALICE_STATE)
            .returning(|_, _, _| Ok(SessionKey::new(ALICE_KEY)));
        mocks
            .sessions
            .expect_resume()
            .withf(|key| key.as_str() == ALICE_KEY)
            .returning(|key| Ok(Some(alice_session(key))));
        mocks
    }

    /// The API on these mocks.
    fn api(self) -> Api {
        let services = Services {
            accounts: Arc::new(self.accounts),
            chat: Arc::new(self.chat),
            sessions: Arc::new(self.sessions),
            health: Arc::new(MockHealth::new()),
            // No socket is opened here: tests/api/realtime.rs drives them for real.
            realtime: Arc::new(EventHub::new(HubSettings::DEFAULT)),
        };
        Api::new(services, config())
    }
}

fn config() -> HttpConfig {
    let generous = Limit {
        per_minute: 1_000,
        burst: 1_000,
    };
    let rate_limiters = RateLimiters::new(&RateLimitConfig {
        auth: generous,
        messages: generous,
        writes: generous,
        mail: generous,
        trusted_proxies: vec![],
    })
    .expect("non-zero limits");
    HttpConfig {
        cookie_key: Key::generate(),
        cookie_name: COOKIE_NAME.to_owned(),
        cookie_secure: false,
        session_idle_timeout: Duration::from_secs(3_600),
        allowed_origins: vec![],
        public_origin: None,
        trusted_proxies: vec![],
        max_body_bytes: 64 * 1024,
        max_message_chars: MAX_MESSAGE_CHARS,
        body_timeout: Duration::from_secs(5),
        rate_limiters,
        // Test requests have no peer address to key the limits by.
        rate_limits_enabled: false,
        stream_keep_alive: Duration::from_secs(15),
        socket_ping_interval: Duration::from_secs(30),
        socket_send_timeout: Duration::from_secs(10),
    }
}

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn alice() -> User {
    User {
        id: ALICE,
        username: Username::parse("Alice").unwrap(),
        created_at: at(T0),
    }
}

fn alice_session(_key: &SessionKey) -> SessionRecord {
    SessionRecord {
        id: SessionId::new(1),
        user: Some(ALICE),
        state: ALICE_STATE.to_owned(),
        user_agent: None,
        created_at: at(T0),
        last_seen_at: at(T0),
        expires_at: Timestamp::max(),
    }
}

fn conversation(id: i64, name: &str) -> Conversation {
    Conversation {
        id: ConversationId::new(id),
        owner: ALICE,
        name: ConversationName::parse(name).unwrap(),
        created_at: at(T0),
        updated_at: at(T2),
    }
}

fn message(id: i64, sender: Sender, text: &str, millis: i64) -> Message {
    Message {
        id: MessageId::new(id),
        conversation_id: ConversationId::new(5),
        sender,
        text: text.to_owned(),
        status: MessageStatus::Complete,
        created_at: at(millis),
    }
}

fn exchange() -> Exchange {
    Exchange {
        user_message: message(11, Sender::User, "Hello", T1),
        bot_message: message(12, Sender::Bot, "You said: Hello", T2),
    }
}

fn storage_down() -> Error {
    Error::StorageUnavailable(StorageError::Unavailable("connection refused".into()))
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    /// The cookies it sets.
    cookies: Vec<Cookie<'static>>,
    /// Its bytes.
    raw: Vec<u8>,
    /// Its JSON body; `Null` when there is no body.
    body: Value,
}

impl Reply {
    /// Asserts the API's error shape: exactly `{"error": error, "code": code}`.
    fn assert_error(&self, status: u16, code: &str, error: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.body, json!({"error": error, "code": code}), "{self:?}");
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a text header"))
    }

    fn cookie(&self, name: &str) -> Option<&Cookie<'static>> {
        self.cookies.iter().find(|cookie| cookie.name() == name)
    }

    /// The session cookie a successful login sets.
    fn session_cookie(&self) -> Cookie<'static> {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        self.cookie(COOKIE_NAME).expect("a session cookie").clone()
    }
}

/// Sends `request` to `app`; an error raised by a middleware is answered as the
/// server would answer it.
async fn send<S, R, B>(app: &S, request: R) -> Reply
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, headers, cookies, raw) = match app.call(request).await {
        Ok(response) => {
            let cookies = response
                .response()
                .cookies()
                .map(Cookie::into_owned)
                .collect();
            let headers = response.headers().clone();
            (
                response.status(),
                headers,
                cookies,
                test::read_body(response).await,
            )
        }
        Err(error) => {
            let response = error.error_response();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().try_into_bytes().unwrap_or_default();
            (status, headers, vec![], body)
        }
    };
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).expect("a JSON body")
    };
    Reply {
        status,
        headers,
        cookies,
        raw: raw.to_vec(),
        body,
    }
}

/// Alice's login; on an app built [`Mocks::with_alice`], the reply's
/// [`session_cookie`](Reply::session_cookie) is her session's.
fn alice_login() -> TestRequest {
    TestRequest::post()
        .uri("/api/login")
        .set_json(json!({"username": "alice", "password": "correct horse"}))
}

// Signup.

#[actix_web::test]
async fn signing_up_creates_the_account_with_the_name_as_typed() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_sign_up()
        .withf(|account| {
            account.username.as_str() == "Alice"
                && account.password.expose() == "correct horse"
                && account.email.is_none()
        })
        .times(1)
        .returning(|account| {
            Ok(User {
                id: ALICE,
                username: account.username,
                created_at: at(T0),
            })
        });
    let app = test::init_service(mocks.api().app()).await;

    let signup = TestRequest::post()
        .uri("/api/signup")
        .set_json(json!({"username": "Alice", "password": "correct horse"}));
    let reply = send(&app, signup.to_request()).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body, json!({"message": "User created successfully"}));
    assert!(
        reply.cookies.is_empty(),
        "signup does not log in: {reply:?}"
    );
}

#[actix_web::test]
async fn signing_up_with_a_taken_name_is_a_conflict() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_sign_up()
        .withf(|account| account.username.as_str() == "BOB")
        .times(1)
        .returning(|_| Err(Error::UsernameTaken));
    let app = test::init_service(mocks.api().app()).await;

    let signup = TestRequest::post()
        .uri("/api/signup")
        .set_json(json!({"username": "BOB", "password": "password1"}));
    let reply = send(&app, signup.to_request()).await;

    reply.assert_error(409, "conflict", "That username is already taken.");
}

#[actix_web::test]
async fn signups_breaking_a_rule_are_refused_before_the_use_case() {
    let mut mocks = Mocks::default();
    mocks.accounts.expect_sign_up().never();
    let app = test::init_service(mocks.api().app()).await;

    for (username, password, code, error) in [
        (
            json!("al"),
            json!("correct horse"),
            "validation_failed",
            "Username must be at least 3 characters long.",
        ),
        (
            json!("ali ce"),
            json!("correct horse"),
            "validation_failed",
            "Username may only contain letters, digits, '_', '.' and '-'.",
        ),
        (
            json!("alice"),
            json!("short"),
            "validation_failed",
            "Password must be at least 8 characters long.",
        ),
        (
            json!("alice"),
            json!("p".repeat(73)),
            "validation_failed",
            "Password must be at most 72 bytes long.",
        ),
        (
            json!("alice"),
            Value::Null,
            "bad_request",
            "Field `password` is invalid: invalid type: null, expected a string.",
        ),
    ] {
        let signup = TestRequest::post()
            .uri("/api/signup")
            .set_json(json!({"username": username, "password": password}));
        let reply = send(&app, signup.to_request()).await;
        reply.assert_error(400, code, error);
    }
}

// Login and logout.

#[actix_web::test]
async fn a_login_the_hasher_cannot_take_now_is_503_with_retry_after_and_no_session() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_verify_credentials()
        .times(1)
        .returning(|_, _| Err(Error::Busy));
    mocks.sessions.expect_start().never();
    let app = test::init_service(mocks.api().app()).await;

    let reply = send(&app, alice_login().to_request()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body["code"], "unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(reply.cookie(COOKIE_NAME).is_none(), "{reply:?}");
}

#[actix_web::test]
async fn a_username_with_too_many_failed_logins_is_429_with_the_wait() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_verify_credentials()
        .times(1)
        .returning(|_, _| {
            Err(Error::LoginsSuspended {
                retry_after: Duration::from_millis(299_400),
            })
        });
    let app = test::init_service(mocks.api().app()).await;

    let reply = send(&app, alice_login().to_request()).await;

    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
    assert_eq!(reply.body["code"], "rate_limited");
    assert_eq!(reply.header("retry-after"), Some("300"), "rounded up");
    assert_eq!(
        reply.body["error"],
        "Too many failed logins for this username: try again in 300 s."
    );
}

#[actix_web::test]
async fn logging_in_starts_a_session_for_the_user_and_sets_its_cookie() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_verify_credentials()
        .withf(|username, attempt| username == "alice" && attempt.expose() == "correct horse")
        .times(1)
        .returning(|_, _| Ok(alice()));
    mocks
        .sessions
        .expect_start()
        .withf(|user, _, state| *user == Some(ALICE) && state == ALICE_STATE)
        .times(1)
        .returning(|_, _, _| Ok(SessionKey::new(ALICE_KEY)));
    let app = test::init_service(mocks.api().app()).await;

    let reply = send(&app, alice_login().to_request()).await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"message": "Login successful", "user": {"id": 7, "username": "Alice"}}),
        "the name as typed at signup"
    );
    let cookie = reply.session_cookie();
    assert!(!cookie.value().is_empty(), "{cookie}");
    assert_eq!(cookie.http_only(), Some(true), "{cookie}");
    assert_eq!(
        cookie.same_site(),
        Some(actix_web::cookie::SameSite::Lax),
        "{cookie}"
    );
    assert_eq!(cookie.path(), Some("/"), "{cookie}");
    assert_ne!(cookie.secure(), Some(true), "as configured: {cookie}");
}

#[actix_web::test]
async fn logging_in_with_wrong_credentials_is_unauthorized_and_starts_no_session() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_verify_credentials()
        .withf(|username, attempt| username == "alice" && attempt.expose() == "wrong horse")
        .times(1)
        .returning(|_, _| Err(Error::InvalidCredentials));
    mocks.sessions.expect_start().never();
    let app = test::init_service(mocks.api().app()).await;

    let login = TestRequest::post()
        .uri("/api/login")
        .set_json(json!({"username": "alice", "password": "wrong horse"}));
    let reply = send(&app, login.to_request()).await;

    reply.assert_error(401, "unauthorized", "Invalid username or password.");
    assert!(reply.cookies.is_empty(), "{reply:?}");
}

#[actix_web::test]
async fn logging_in_again_ends_the_old_session_and_starts_another() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_verify_credentials()
        .times(2)
        .returning(|_, _| Ok(alice()));
    let mut started = 0;
    mocks
        .sessions
        .expect_start()
        .withf(|user, _, state| *user == Some(ALICE) && state == ALICE_STATE)
        .times(2)
        .returning(move |_, _, _| {
            started += 1;
            Ok(SessionKey::new(format!("key-{started}")))
        });
    mocks
        .sessions
        .expect_resume()
        .withf(|key| key.as_str() == "key-1")
        .times(1)
        .returning(|key| Ok(Some(alice_session(key))));
    mocks
        .sessions
        .expect_end()
        .withf(|key| key.as_str() == "key-1")
        .times(1)
        .returning(|_| Ok(()));
    let app = test::init_service(mocks.api().app()).await;

    let first = send(&app, alice_login().to_request())
        .await
        .session_cookie();
    let again = alice_login().cookie(first.clone());
    let second = send(&app, again.to_request()).await.session_cookie();

    assert_ne!(first.value(), second.value(), "a new key at every login");
}

#[actix_web::test]
async fn logging_out_ends_the_session_and_clears_its_cookie() {
    let mut mocks = Mocks::with_alice();
    mocks
        .sessions
        .expect_end()
        .withf(|key| key.as_str() == ALICE_KEY)
        .times(1)
        .returning(|_| Ok(()));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let logout = TestRequest::post().uri("/api/logout").cookie(alice);
    let reply = send(&app, logout.to_request()).await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, json!({"message": "Logged out successfully"}));
    let cleared = reply.cookie(COOKIE_NAME).expect("the cookie is cleared");
    assert_eq!(cleared.value(), "", "{cleared}");
    assert_eq!(
        cleared.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO),
        "{cleared}"
    );
}

#[actix_web::test]
async fn logging_out_without_a_session_ends_nothing() {
    let mut mocks = Mocks::default();
    mocks.sessions.expect_end().never();
    let app = test::init_service(mocks.api().app()).await;

    for logout in [TestRequest::get(), TestRequest::post()] {
        let reply = send(&app, logout.uri("/api/logout").to_request()).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body, json!({"message": "Logged out successfully"}));
    }
}

// Conversations: sessions.

/// One request to each conversation route, with a valid body.
fn every_conversation_route() -> Vec<TestRequest> {
    vec![
        TestRequest::get().uri("/api/conversations"),
        TestRequest::get().uri("/api/conversations?limit=5"),
        TestRequest::post()
            .uri("/api/conversations")
            .set_json(json!({"name": "Trip"})),
        TestRequest::put()
            .uri("/api/conversations/5")
            .set_json(json!({"name": "Trip"})),
        TestRequest::delete().uri("/api/conversations/5"),
        TestRequest::get().uri("/api/conversations/5/messages"),
        TestRequest::post()
            .uri("/api/conversations/5/messages")
            .set_json(json!({"text": "Hello"})),
    ]
}

#[actix_web::test]
async fn without_a_session_every_conversation_route_is_unauthorized() {
    // No expectations: any call to a use case fails the test.
    let app = test::init_service(Mocks::default().api().app()).await;

    for request in every_conversation_route() {
        let reply = send(&app, request.to_request()).await;
        reply.assert_error(
            401,
            "unauthorized",
            "Authentication required: log in first.",
        );
    }
}

#[actix_web::test]
async fn a_session_that_has_ended_is_unauthorized() {
    let mut mocks = Mocks::default();
    mocks
        .accounts
        .expect_verify_credentials()
        .returning(|_, _| Ok(alice()));
    mocks
        .sessions
        .expect_start()
        .returning(|_, _, _| Ok(SessionKey::new(ALICE_KEY)));
    // Ended elsewhere, or expired: the key finds nothing.
    mocks
        .sessions
        .expect_resume()
        .withf(|key| key.as_str() == ALICE_KEY)
        .returning(|_| Ok(None));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    for request in every_conversation_route() {
        let reply = send(&app, request.cookie(alice.clone()).to_request()).await;
        reply.assert_error(
            401,
            "unauthorized",
            "Authentication required: log in first.",
        );
    }
}

// Conversations: listing.

fn trip_listed() -> ConversationWithMessages {
    ConversationWithMessages {
        conversation: conversation(5, "Trip to Oslo"),
        messages: vec![exchange().user_message, exchange().bot_message],
    }
}

#[actix_web::test]
async fn the_whole_list_is_the_seeds_and_is_rendered_once_per_revision() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_revision()
        .withf(|owner| *owner == ALICE)
        .times(2)
        .returning(|_| Ok(Revision(3)));
    mocks
        .chat
        .expect_conversations()
        .withf(|owner| *owner == ALICE)
        .times(1)
        .returning(|_| Ok(vec![trip_listed()]));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let list = || {
        TestRequest::get()
            .uri("/api/conversations")
            .cookie(alice.clone())
            .to_request()
    };
    let first = send(&app, list()).await;

    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(
        first.body,
        json!([{
            "id": 5,
            "name": "Trip to Oslo",
            "created_at": "2026-11-25T06:07:14.123Z",
            "updated_at": "2026-11-25T06:07:16.123Z",
            "messages": [
                {"id": 11, "sender": "user", "text": "Hello", "status": "complete",
                    "created_at": "2026-11-25T06:07:15.123Z"},
                {"id": 12, "sender": "bot", "text": "You said: Hello", "status": "complete",
                    "created_at": "2026-11-25T06:07:16.123Z"},
            ],
        }])
    );
    let second = send(&app, list()).await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    assert_eq!(second.body, first.body, "the same revision, the same list");
}

#[actix_web::test]
async fn a_page_of_conversations_passes_the_limit_and_gives_the_next_cursor() {
    let mut mocks = Mocks::with_alice();
    // The page's tag names the revision it was read at.
    mocks
        .chat
        .expect_revision()
        .withf(|owner| *owner == ALICE)
        .times(1)
        .returning(|_| Ok(Revision(1)));
    mocks
        .chat
        .expect_conversation_page()
        .withf(|owner, page| {
            *owner == ALICE
                && *page
                    == PageRequest {
                        size: PageSize::parse("1").unwrap(),
                        before: None,
                    }
        })
        .times(1)
        .returning(|_, _| {
            let trip = conversation(5, "Trip to Oslo");
            Ok(Page {
                next: Some(ConversationCursor::after(&trip)),
                items: vec![trip],
            })
        });
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let page = TestRequest::get()
        .uri("/api/conversations?limit=1")
        .cookie(alice);
    let reply = send(&app, page.to_request()).await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({
            "conversations": [{
                "id": 5,
                "name": "Trip to Oslo",
                "created_at": "2026-11-25T06:07:14.123Z",
                "updated_at": "2026-11-25T06:07:16.123Z",
            }],
            "next": "1795586836123_5",
        })
    );
}

#[actix_web::test]
async fn listing_while_the_storage_is_unavailable_is_503() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_revision()
        .withf(|owner| *owner == ALICE)
        .times(1)
        .returning(|_| Err(storage_down()));
    mocks.chat.expect_conversations().never();
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let list = TestRequest::get().uri("/api/conversations").cookie(alice);
    let reply = send(&app, list.to_request()).await;

    reply.assert_error(
        503,
        "unavailable",
        "The service is temporarily unavailable, try again shortly.",
    );
}

// Conversations: create, rename, delete.

#[actix_web::test]
async fn creating_a_conversation_gives_it_the_trimmed_name_or_the_default() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_create_conversation()
        .withf(|owner, name| *owner == ALICE && name.as_str() == "Trip to Oslo")
        .times(1)
        .returning(|_, _| Ok(conversation(5, "Trip to Oslo")));
    mocks
        .chat
        .expect_create_conversation()
        .withf(|owner, name| *owner == ALICE && *name == ConversationName::default())
        .times(1)
        .returning(|_, name| Ok(conversation(6, name.as_str())));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let named = TestRequest::post()
        .uri("/api/conversations")
        .cookie(alice.clone())
        .set_json(json!({"name": "  Trip to Oslo "}));
    let reply = send(&app, named.to_request()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({
            "id": 5,
            "name": "Trip to Oslo",
            "created_at": "2026-11-25T06:07:14.123Z",
            "updated_at": "2026-11-25T06:07:16.123Z",
        })
    );

    // No body at all: the seed's "New conversation".
    let unnamed = TestRequest::post().uri("/api/conversations").cookie(alice);
    let reply = send(&app, unnamed.to_request()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body["id"], 6);
    assert_eq!(reply.body["name"], "New conversation");
}

#[actix_web::test]
async fn a_blank_name_is_refused_before_the_use_case() {
    let mut mocks = Mocks::with_alice();
    mocks.chat.expect_create_conversation().never();
    mocks.chat.expect_rename_conversation().never();
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    for request in [
        TestRequest::post().uri("/api/conversations"),
        TestRequest::put().uri("/api/conversations/5"),
    ] {
        let request = request
            .cookie(alice.clone())
            .set_json(json!({"name": " \t "}));
        let reply = send(&app, request.to_request()).await;
        reply.assert_error(400, "validation_failed", "Name must not be empty.");
    }
}

#[actix_web::test]
async fn renaming_a_conversation_answers_it_renamed_or_404() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_rename_conversation()
        .withf(|owner, id, name| {
            *owner == ALICE && *id == ConversationId::new(5) && name.as_str() == "Norway"
        })
        .times(1)
        .returning(|_, id, name| {
            Ok(Conversation {
                name,
                ..conversation(id.get(), "Trip to Oslo")
            })
        });
    mocks
        .chat
        .expect_rename_conversation()
        .withf(|owner, id, _| *owner == ALICE && *id == ConversationId::new(404))
        .times(1)
        .returning(|_, _, _| Err(Error::ConversationNotFound));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let rename = |id: i64| {
        TestRequest::put()
            .uri(&format!("/api/conversations/{id}"))
            .cookie(alice.clone())
            .set_json(json!({"name": "Norway"}))
            .to_request()
    };
    let reply = send(&app, rename(5)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({
            "id": 5,
            "name": "Norway",
            "created_at": "2026-11-25T06:07:14.123Z",
            "updated_at": "2026-11-25T06:07:16.123Z",
        })
    );

    let reply = send(&app, rename(404)).await;
    reply.assert_error(404, "not_found", "Conversation not found.");
}

#[actix_web::test]
async fn deleting_a_conversation_answers_204_or_404() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_delete_conversation()
        .withf(|owner, id| *owner == ALICE && *id == ConversationId::new(5))
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .chat
        .expect_delete_conversation()
        .withf(|owner, id| *owner == ALICE && *id == ConversationId::new(404))
        .times(1)
        .returning(|_, _| Err(Error::ConversationNotFound));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let delete = |path: &str| {
        TestRequest::delete()
            .uri(path)
            .cookie(alice.clone())
            .to_request()
    };
    let reply = send(&app, delete("/api/conversations/5")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    assert!(reply.raw.is_empty(), "{reply:?}");

    let reply = send(&app, delete("/api/conversations/404")).await;
    reply.assert_error(404, "not_found", "Conversation not found.");

    // An id that is not a number names no conversation; the use case is not asked.
    let reply = send(&app, delete("/api/conversations/five")).await;
    reply.assert_error(404, "not_found", "Conversation not found.");
}

// Conversations: messages.

#[actix_web::test]
async fn sending_a_message_answers_the_users_message_and_the_bots_reply() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_send_message()
        .withf(|owner, id, text| {
            *owner == ALICE && *id == ConversationId::new(5) && text.as_str() == "Hello"
        })
        .times(1)
        .returning(|_, _, _| Ok(exchange()));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let message = TestRequest::post()
        .uri("/api/conversations/5/messages")
        .cookie(alice)
        .set_json(json!({"text": "  Hello\n"}));
    let reply = send(&app, message.to_request()).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(
        reply.body,
        json!([
            {"id": 11, "sender": "user", "text": "Hello", "status": "complete",
                "created_at": "2026-11-25T06:07:15.123Z"},
            {"id": 12, "sender": "bot", "text": "You said: Hello", "status": "complete",
                "created_at": "2026-11-25T06:07:16.123Z"},
        ])
    );
}

#[actix_web::test]
async fn sending_a_message_reports_the_use_cases_failures() {
    let mut mocks = Mocks::with_alice();
    let mut failures = vec![
        Error::ConversationNotFound,
        Error::BotUnavailable(BotError::Timeout),
        storage_down(),
    ]
    .into_iter();
    mocks
        .chat
        .expect_send_message()
        .withf(|owner, id, text| {
            *owner == ALICE && *id == ConversationId::new(5) && text.as_str() == "Hello"
        })
        .times(3)
        .returning(move |_, _, _| Err(failures.next().unwrap()));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    for (status, code, error) in [
        (404, "not_found", "Conversation not found."),
        (
            502,
            "bot_unavailable",
            "The bot is unavailable, try again shortly.",
        ),
        (
            503,
            "unavailable",
            "The service is temporarily unavailable, try again shortly.",
        ),
    ] {
        let message = TestRequest::post()
            .uri("/api/conversations/5/messages")
            .cookie(alice.clone())
            .set_json(json!({"text": "Hello"}));
        let reply = send(&app, message.to_request()).await;
        reply.assert_error(status, code, error);
    }
}

#[actix_web::test]
async fn a_message_breaking_a_rule_is_refused_before_the_use_case() {
    let mut mocks = Mocks::with_alice();
    mocks.chat.expect_send_message().never();
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    for (text, error) in [
        (String::new(), "Text must not be empty."),
        (" \n\t ".to_owned(), "Text must not be empty."),
        (
            "a".repeat(MAX_MESSAGE_CHARS + 1),
            "Text must be at most 100 characters long.",
        ),
        (
            "nul\u{0}".to_owned(),
            "Text must not contain NUL characters.",
        ),
    ] {
        let message = TestRequest::post()
            .uri("/api/conversations/5/messages")
            .cookie(alice.clone())
            .set_json(json!({"text": text}));
        let reply = send(&app, message.to_request()).await;
        reply.assert_error(400, "validation_failed", error);
    }
}

// Conversations: replies as server-sent events.

/// The events of a reply with two deltas that ends as `end`.
fn reply_events(end: ReplyEvent) -> ReplyFeed {
    let created = Message {
        text: String::new(),
        status: MessageStatus::Streaming,
        ..message(12, Sender::Bot, "", T2)
    };
    let delta = |seq: u64, text: &str| {
        ReplyEvent::Delta(Delta {
            message_id: MessageId::new(12),
            seq,
            text: text.to_owned(),
        })
    };
    let events = vec![
        ReplyEvent::Started(created),
        delta(1, "You said: "),
        delta(2, "Hello"),
        end,
    ];
    Box::pin(futures_util::stream::iter(events))
}

/// Sends `request` to `app`; the status, the content type and the body's text.
async fn send_for_text<S, R, B>(app: &S, request: R) -> (StatusCode, String, String)
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = app.call(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|t| t.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = test::read_body(response).await;
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[actix_web::test]
async fn a_send_that_accepts_an_event_stream_answers_the_reply_as_events() {
    let mut mocks = Mocks::with_alice();
    mocks.chat.expect_send_message().never();
    mocks
        .chat
        .expect_start_reply()
        .withf(|owner, id, text| {
            *owner == ALICE && *id == ConversationId::new(5) && text.as_str() == "Hello"
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(StartedReply {
                user_message: message(11, Sender::User, "Hello", T1),
                events: reply_events(ReplyEvent::Done(message(
                    12,
                    Sender::Bot,
                    "You said: Hello",
                    T2,
                ))),
            })
        });
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();

    let request = TestRequest::post()
        .uri("/api/conversations/5/messages")
        .cookie(alice)
        .insert_header(("Accept", "application/json, text/event-stream;q=0.9"))
        .set_json(json!({"text": "Hello"}));
    let (status, content_type, body) = send_for_text(&app, request.to_request()).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/event-stream");
    let expected = [
        r#"event: message
data: {"id":11,"sender":"user","text":"Hello","status":"complete","created_at":"2026-11-25T06:07:15.123Z"}"#,
        r#"event: reply
data: {"id":12,"sender":"bot","text":"","status":"streaming","created_at":"2026-11-25T06:07:16.123Z"}"#,
        r#"event: delta
id: 1
data: {"message_id":12,"text":"You said: "}"#,
        r#"event: delta
id: 2
data: {"message_id":12,"text":"Hello"}"#,
        r#"event: done
data: {"id":12,"sender":"bot","text":"You said: Hello","status":"complete","created_at":"2026-11-25T06:07:16.123Z"}"#,
    ];
    assert_eq!(body, format!("{}\n\n", expected.join("\n\n")));
}

#[actix_web::test]
async fn a_failing_reply_ends_its_events_with_an_error_event() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_start_reply()
        .times(1)
        .returning(|_, _, _| {
            Ok(StartedReply {
                user_message: message(11, Sender::User, "Hello", T1),
                events: reply_events(ReplyEvent::Failed {
                    failure: ReplyFailure::Bot(BotError::Timeout),
                    message: None,
                }),
            })
        });
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();
    let request = TestRequest::post()
        .uri("/api/conversations/5/messages")
        .cookie(alice)
        .insert_header(("Accept", "text/event-stream"))
        .set_json(json!({"text": "Hello"}));
    let (status, _, body) = send_for_text(&app, request.to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.ends_with(
            "event: error\ndata: {\"error\":\"The bot is unavailable, try again shortly.\",\"code\":\"bot_unavailable\"}\n\n"
        ),
        "{body}"
    );
}

#[actix_web::test]
async fn a_streamed_send_refused_by_the_use_case_is_a_json_error() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_start_reply()
        .times(1)
        .returning(|_, _, _| Err(Error::ReplyInProgress));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();
    let request = TestRequest::post()
        .uri("/api/conversations/5/messages")
        .cookie(alice)
        .insert_header(("Accept", "text/event-stream"))
        .set_json(json!({"text": "Hello"}));
    let reply = send(&app, request.to_request()).await;
    reply.assert_error(
        409,
        "conflict",
        "A reply is still being written in this conversation: wait for it or stop it.",
    );
}

#[actix_web::test]
async fn following_a_reply_passes_the_last_event_id_and_refuses_a_garbled_one() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_follow_reply()
        .withf(|owner, id, reply, after| {
            *owner == ALICE
                && *id == ConversationId::new(5)
                && *reply == MessageId::new(12)
                && *after == Some(1)
        })
        .times(1)
        .returning(|_, _, _, _| {
            let rest = vec![
                ReplyEvent::Delta(Delta {
                    message_id: MessageId::new(12),
                    seq: 2,
                    text: "Hello".to_owned(),
                }),
                ReplyEvent::Done(message(12, Sender::Bot, "You said: Hello", T2)),
            ];
            let feed: ReplyFeed = Box::pin(futures_util::stream::iter(rest));
            Ok(feed)
        });
    mocks
        .chat
        .expect_follow_reply()
        .withf(|_, _, reply, _| *reply == MessageId::new(404))
        .returning(|_, _, _, _| Err(Error::MessageNotFound));
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();
    let follow = |reply: i64, last: &str| {
        TestRequest::get()
            .uri(&format!("/api/conversations/5/messages/{reply}/events"))
            .cookie(alice.clone())
            .insert_header(("Last-Event-ID", last.to_owned()))
            .to_request()
    };

    let (status, content_type, body) = send_for_text(&app, follow(12, "1")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/event-stream")
    );
    assert!(
        body.starts_with(
            "event: delta\nid: 2\ndata: {\"message_id\":12,\"text\":\"Hello\"}\n\nevent: done\n"
        ),
        "{body}"
    );
    send(&app, follow(12, "one")).await.assert_error(
        400,
        "bad_request",
        "Last-Event-ID must be the id of a delta event: a whole number.",
    );
    send(&app, follow(404, "1"))
        .await
        .assert_error(404, "not_found", "Message not found.");
}

#[actix_web::test]
async fn stopping_a_reply_answers_it_as_stored() {
    let mut mocks = Mocks::with_alice();
    mocks
        .chat
        .expect_stop_reply()
        .withf(|owner, id, reply| {
            *owner == ALICE && *id == Some(ConversationId::new(5)) && *reply == MessageId::new(12)
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(Message {
                status: MessageStatus::Interrupted,
                ..message(12, Sender::Bot, "You said", T2)
            })
        });
    let app = test::init_service(mocks.api().app()).await;
    let alice = send(&app, alice_login().to_request())
        .await
        .session_cookie();
    let stop = TestRequest::post()
        .uri("/api/conversations/5/messages/12/stop")
        .cookie(alice)
        .to_request();
    let reply = send(&app, stop).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"id": 12, "sender": "bot", "text": "You said", "status": "interrupted",
            "created_at": "2026-11-25T06:07:16.123Z"})
    );
}
