//! A running server on a database of its own, and an HTTP client that keeps one
//! user's session cookie, for black-box tests.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, COOKIE, HeaderMap, SET_COOKIE};
use chatbot_domain::ManualClock;
use chatbot_persistence::testing::TestDb;
use chatbot_server::{Application, Settings};
use serde_json::{Value, json};

/// The secret every test server signs cookies with, so that two servers on one
/// database accept each other's cookies.
pub const SECRET: &str = "test-secret-test-secret-test-secret-test-secret-0123456789abcdef";

/// Settings for a test server on `db`, changed by `overrides` (environment variable
/// names and values, as an operator would set them).
pub fn settings(db: &TestDb, overrides: &[(&str, &str)]) -> Settings {
    let mut environment: HashMap<String, String> = [
        ("DATABASE_URL", db.url()),
        ("SECRET_KEY", SECRET),
        ("CHATBOT__AUTH__BCRYPT_COST", "4"),
        ("CHATBOT__SERVER__WORKERS", "1"),
        ("CHATBOT__DATABASE__POOL_SIZE", "4"),
        // Tests sign up many users from one address; the limits have tests of their own.
        ("CHATBOT__RATE_LIMIT__ENABLED", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // Mail goes to files under target/, never into the working directory; the tests
    // that read mail give a directory (or an SMTP server) of their own.
    let mail = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("mail");
    environment.insert(
        "CHATBOT__MAIL__FILE_DIR".to_owned(),
        mail.display().to_string(),
    );
    for (key, value) in overrides {
        environment.insert((*key).to_owned(), (*value).to_owned());
    }
    Settings::from_environment(environment).expect("test settings are valid")
}

/// Settings for a test server on `db` whose bot is the fake model provider at
/// `base_url`, with `overrides` on top.
pub fn on_fake_model(db: &TestDb, base_url: &str, overrides: &[(&str, &str)]) -> Settings {
    let mut all = vec![
        ("CHATBOT__BOT__PROVIDER", "openai"),
        ("CHATBOT__BOT__BASE_URL", base_url),
        ("CHATBOT__BOT__MODEL", "fake-model"),
    ];
    all.extend_from_slice(overrides);
    settings(db, &all)
}

/// A server under test, stopped when dropped.
pub struct Server {
    pub base: String,
    handle: ServerHandle,
}

impl Server {
    /// Starts a server with `settings` on a free port.
    pub async fn start(settings: Settings) -> Self {
        Self::serve(Application::build(settings).expect("the application starts"))
    }

    /// Starts a server with `settings` whose time is `clock`'s: a test moves it.
    pub async fn start_with_clock(settings: Settings, clock: &ManualClock) -> Self {
        let application = Application::build_with_clock(settings, Arc::new(clock.clone()));
        Self::serve(application.expect("the application starts"))
    }

    fn serve(application: Application) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = application.serve(listener).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { base, handle }
    }

    /// A client with no session yet.
    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// Stops accepting, finishes what is in flight, and waits for the workers.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the SPEC error shape: JSON `{"error": sentence, "code": code}`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        let sentence = self.body["error"].as_str().unwrap_or_default();
        assert!(sentence.len() > 5, "a sentence a UI can show: {self:?}");
        assert_eq!(
            self.headers.get(CONTENT_TYPE).unwrap(),
            "application/json",
            "{self:?}"
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One user's browser: sends its session cookie, keeps what the server sets.
pub struct Client {
    base: String,
    pub cookie: Option<String>,
    http: awc::Client,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`), with no session yet.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            cookie: None,
            http: awc::Client::default(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(awc::http::Method::GET, path, None, &[]).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send(awc::http::Method::POST, path, Some(body.to_string()), &[])
            .await
    }

    pub async fn put(&mut self, path: &str, body: Value) -> Reply {
        self.send(awc::http::Method::PUT, path, Some(body.to_string()), &[])
            .await
    }

    pub async fn delete(&mut self, path: &str) -> Reply {
        self.send(awc::http::Method::DELETE, path, None, &[]).await
    }

    /// A DELETE with a JSON body (deleting the account takes the password).
    pub async fn delete_with(&mut self, path: &str, body: Value) -> Reply {
        self.send(awc::http::Method::DELETE, path, Some(body.to_string()), &[])
            .await
    }

    pub async fn patch(&mut self, path: &str, body: Value) -> Reply {
        self.send(awc::http::Method::PATCH, path, Some(body.to_string()), &[])
            .await
    }

    /// Any request: `body` is sent as JSON unless `headers` set a content type.
    pub async fn send(
        &mut self,
        method: awc::http::Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.insert_header((COOKIE, cookie.clone()));
        }
        let sets_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !sets_type {
            request = request.insert_header((CONTENT_TYPE, "application/json"));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = match body {
            Some(body) => request.send_body(body).await,
            None => request.send().await,
        }
        .expect("the server answers");
        let bytes = response.body().limit(10 << 20).await.unwrap();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default();
            // An emptied cookie (logout) clears the jar, like a browser would.
            let expired = set.contains("Max-Age=0") || pair.ends_with('=');
            self.cookie = if expired { None } else { Some(pair.to_owned()) };
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status: response.status(),
            headers,
            body,
        }
    }

    /// Signs `name` up with a valid password and logs in.
    pub async fn sign_up_and_log_in(&mut self, name: &str) -> i64 {
        let credentials = json!({"username": name, "password": "correct horse"});
        assert_eq!(
            self.post("/api/signup", credentials.clone()).await.status,
            201
        );
        let login = self.post("/api/login", credentials).await;
        assert_eq!(login.status, 200, "{login:?}");
        login.body["user"]["id"].as_i64().unwrap()
    }

    /// Creates a conversation named `name`; returns its id.
    pub async fn create_conversation(&mut self, name: &str) -> i64 {
        let created = self.post("/api/conversations", json!({"name": name})).await;
        assert_eq!(created.status, 201, "{created:?}");
        created.body["id"].as_i64().unwrap()
    }
}

/// Expands each test into `sqlite::name` and `postgres::name`, given a fresh migrated
/// database as `db: TestDb`.
macro_rules! api_tests {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[actix_web::test]
                async fn $name() {
                    let $db = chatbot_persistence::testing::TestDb::sqlite();
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[actix_web::test]
                #[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
                async fn $name() {
                    let $db = chatbot_persistence::testing::TestDb::postgres();
                    $body
                }
            )*
        }
    };
}
pub(crate) use api_tests;

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub id: Option<u64>,
    pub data: Value,
}

type Body = std::pin::Pin<
    Box<dyn futures_core::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>>,
>;

/// An event stream being read, event by event, as slowly as the test likes.
pub struct Events {
    pub headers: HeaderMap,
    body: Body,
    buffer: Vec<u8>,
    /// How many `: keep-alive` comments came so far.
    pub keep_alives: usize,
}

impl Events {
    /// The next event; `None` once the server has ended the stream.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("events are UTF-8");
                let (mut name, mut id, mut data) = (None, None, None);
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.parse().expect("numeric event ids"));
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(value).expect("JSON data"));
                    } else if line.starts_with(": keep-alive") {
                        self.keep_alives += 1;
                    } else {
                        assert!(line.is_empty(), "unexpected line {line:?}");
                    }
                }
                if let Some(name) = name {
                    let data = data.expect("every event has data");
                    return Some(Event { name, id, data });
                }
                continue;
            }
            let chunk = std::future::poll_fn(|cx| self.body.as_mut().poll_next(cx)).await;
            match chunk {
                Some(chunk) => self
                    .buffer
                    .extend_from_slice(&chunk.expect("the stream reads")),
                None => {
                    assert!(self.buffer.is_empty(), "a partial event at the end");
                    return None;
                }
            }
        }
    }

    /// The next event, which must be `name`.
    pub async fn expect(&mut self, name: &str) -> Event {
        let event = self.next().await.expect("another event");
        assert_eq!(event.name, name, "{event:?}");
        event
    }

    /// Every event up to the end of the stream.
    pub async fn rest(mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

/// The text of `events`' deltas, joined, after checking they are numbered from
/// `first` without a gap.
pub fn joined_deltas(events: &[Event], first: u64) -> String {
    let deltas: Vec<&Event> = events.iter().filter(|e| e.name == "delta").collect();
    for (n, delta) in (first..).zip(&deltas) {
        assert_eq!(
            delta.id,
            Some(n),
            "deltas are numbered in order: {events:?}"
        );
    }
    deltas
        .iter()
        .map(|d| d.data["text"].as_str().unwrap())
        .collect()
}

impl Client {
    /// A request answered with an event stream (`Ok`), or with anything else, read
    /// whole (`Err`).
    pub async fn events(
        &mut self,
        method: awc::http::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Events, Reply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .insert_header(("Accept", "text/event-stream"));
        if let Some(cookie) = &self.cookie {
            request = request.insert_header((COOKIE, cookie.clone()));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = match body {
            Some(body) => {
                request
                    .insert_header((CONTENT_TYPE, "application/json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        }
        .expect("the server answers");
        let headers = response.headers().clone();
        let is_stream = headers.get(CONTENT_TYPE).is_some_and(|t| {
            t.to_str()
                .unwrap_or_default()
                .starts_with("text/event-stream")
        });
        if response.status() == StatusCode::OK && is_stream {
            return Ok(Events {
                headers,
                body: Box::pin(response),
                buffer: Vec::new(),
                keep_alives: 0,
            });
        }
        let bytes = response.body().limit(10 << 20).await.unwrap();
        Err(Reply {
            status: response.status(),
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// Sends `text` to `conversation` asking for the reply as events.
    pub async fn stream_message(&mut self, conversation: i64, text: &str) -> Events {
        self.events(
            awc::http::Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"text": text})),
            &[],
        )
        .await
        .expect("an event stream")
    }

    /// Follows reply `message` of `conversation`, after delta `after` if given.
    pub async fn follow(
        &mut self,
        conversation: i64,
        message: i64,
        after: Option<u64>,
    ) -> Result<Events, Reply> {
        let after = after.map(|n| n.to_string());
        let headers: Vec<(&str, &str)> = after
            .iter()
            .map(|n| ("Last-Event-ID", n.as_str()))
            .collect();
        self.events(
            awc::http::Method::GET,
            &format!("/api/conversations/{conversation}/messages/{message}/events"),
            None,
            &headers,
        )
        .await
    }
}

/// A WebSocket of a logged-in client, read frame by frame.
pub struct Socket {
    framed: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code and reason.
    With(u16, String),
    /// The connection ended without one.
    Dropped,
}

impl Client {
    /// Opens `GET /api/ws` with this client's cookie and `origin`; the status of a
    /// refused handshake.
    pub async fn socket_from(&self, origin: Option<&str>) -> Result<Socket, u16> {
        let mut request = self.http.ws(format!("{}/api/ws", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie.clone());
        }
        if let Some(origin) = origin {
            request = request.origin(origin);
        }
        match request.max_frame_size(16 << 20).connect().await {
            Ok((_, framed)) => Ok(Socket { framed }),
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
            Err(error) => panic!("the WebSocket handshake failed: {error}"),
        }
    }

    /// Opens the user's WebSocket, as a page of the server's own would.
    pub async fn socket(&self) -> Socket {
        self.socket_from(None).await.expect("the socket opens")
    }
}

impl Socket {
    /// Sends `command` as a text frame.
    pub async fn send(&mut self, command: Value) {
        use futures_util::SinkExt;
        self.framed
            .send(awc::ws::Message::Text(command.to_string().into()))
            .await
            .expect("the frame is sent");
    }

    /// The next frame of any kind, as the client sees it; `None` at the end.
    pub async fn frame(&mut self) -> Option<awc::ws::Frame> {
        use futures_util::StreamExt;
        match self.framed.next().await {
            Some(Ok(frame)) => Some(frame),
            Some(Err(_)) | None => None,
        }
    }

    /// The next JSON frame (pings are answered on the way); panics at the end.
    pub async fn next(&mut self) -> Value {
        loop {
            match self.frame().await {
                Some(awc::ws::Frame::Text(text)) => {
                    return serde_json::from_slice(&text).expect("JSON frames");
                }
                Some(awc::ws::Frame::Ping(bytes)) => {
                    use futures_util::SinkExt;
                    let _ = self.framed.send(awc::ws::Message::Pong(bytes)).await;
                }
                Some(awc::ws::Frame::Close(reason)) => panic!("closed: {reason:?}"),
                Some(_) => {}
                None => panic!("the socket ended"),
            }
        }
    }

    /// Reads on until the socket closes; how it did. Text frames on the way are
    /// counted.
    pub async fn closing(&mut self) -> (Closed, usize) {
        let mut texts = 0;
        loop {
            match self.frame().await {
                Some(awc::ws::Frame::Close(reason)) => {
                    let (code, description) = reason
                        .map(|r| (u16::from(r.code), r.description.unwrap_or_default()))
                        .unwrap_or((1005, String::new()));
                    return (Closed::With(code, description), texts);
                }
                Some(awc::ws::Frame::Text(_)) => texts += 1,
                Some(_) => {}
                None => return (Closed::Dropped, texts),
            }
        }
    }
}

/// A WebSocket client with a tiny receive buffer that reads only when told: a phone
/// on a bad network, as the server sees it.
pub struct StalledSocket {
    stream: actix_web::rt::net::TcpStream,
}

impl Client {
    /// Opens the user's WebSocket on a connection whose receive buffer holds 4 KiB,
    /// then reads nothing until told.
    pub async fn stalled_socket(&self) -> StalledSocket {
        let address: std::net::SocketAddr =
            self.base.trim_start_matches("http://").parse().unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&address.into()).unwrap();
        socket.set_nonblocking(true).unwrap();
        let stream = actix_web::rt::net::TcpStream::from_std(socket.into()).unwrap();
        let cookie = self.cookie.clone().unwrap_or_default();
        let handshake = format!(
            "GET /api/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Cookie: {cookie}\r\n\r\n"
        );
        let mut written = 0;
        while written < handshake.len() {
            stream.writable().await.unwrap();
            match stream.try_write(&handshake.as_bytes()[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let mut stalled = StalledSocket { stream };
        let head = stalled
            .read_until(|bytes| bytes.windows(4).any(|w| w == b"\r\n\r\n"))
            .await;
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        stalled
    }
}

impl StalledSocket {
    /// Reads until `done` says the bytes read so far are enough, or the end.
    async fn read_until(&mut self, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut buffer = [0; 4096];
        while !done(&bytes) {
            self.stream.readable().await.unwrap();
            match self.stream.try_read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        bytes
    }

    /// Reads everything the server sent, to the end: the text frames, and how the
    /// socket closed.
    pub async fn read_to_close(mut self) -> (Closed, usize) {
        let bytes = self.read_until(|_| false).await;
        let (mut at, mut texts) = (0, 0);
        // The server's frames are unmasked: opcode, a length (7 bits, or 16 or 64 more),
        // the payload.
        while at + 2 <= bytes.len() {
            let opcode = bytes[at] & 0x0f;
            let (length, header) = match bytes[at + 1] & 0x7f {
                126 if at + 4 <= bytes.len() => (
                    usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])),
                    4,
                ),
                127 if at + 10 <= bytes.len() => {
                    let mut length = [0; 8];
                    length.copy_from_slice(&bytes[at + 2..at + 10]);
                    (usize::try_from(u64::from_be_bytes(length)).unwrap(), 10)
                }
                short @ 0..=125 => (usize::from(short), 2),
                _ => break,
            };
            let payload =
                &bytes[(at + header).min(bytes.len())..(at + header + length).min(bytes.len())];
            match opcode {
                0x1 => texts += 1,
                0x8 if payload.len() >= 2 => {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                    return (Closed::With(code, reason), texts);
                }
                _ => {}
            }
            at += header + length;
        }
        (Closed::Dropped, texts)
    }
}
