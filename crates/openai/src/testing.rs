//! A fake OpenAI-compatible provider for tests (the `test-support` feature): an HTTP/1.1
//! server on loopback that answers each request with the next [`Reply`] of its script
//! and records what it received.
//!
//! Replies can stream events with pauses, answer an error status (with a body that a
//! client must not repeat: [`FakeProvider::ERROR_BODY`]), hang, or cut the connection;
//! the provider records each request's headers and JSON body, and whether the client
//! hung up before the reply was over (how a test sees cancellation reach the
//! provider). It needs a tokio runtime with I/O and time enabled. Failing to set it up
//! panics: this is test code.
//!
//! ```
//! use chatbot_openai::testing::{FakeProvider, Reply, Step};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let provider = FakeProvider::start([
//!     Reply::status(429).header("Retry-After", "0"),
//!     Reply::sse([Step::content("Hel"), Step::keep_alive(), Step::content("lo"), Step::done()]),
//! ])
//! .await;
//! assert!(provider.base_url().starts_with("http://127.0.0.1:"));
//! assert!(provider.requests().is_empty());
//! # });
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// One answer of the fake provider.
#[derive(Debug, Clone)]
pub struct Reply {
    kind: Kind,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Kind {
    Sse(Vec<Step>),
    Whole { status: u16, body: Vec<u8> },
    Hang,
    Close,
}

impl Reply {
    /// `200 text/event-stream`, chunked, playing `steps`, then ending the body cleanly
    /// (unless a step hangs or resets).
    pub fn sse(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            kind: Kind::Sse(steps.into_iter().collect()),
            headers: Vec::new(),
        }
    }

    /// A complete, well-behaved stream of `pieces`: a role chunk, one chunk per piece,
    /// a `finish_reason: "stop"` chunk, then `data: [DONE]`.
    pub fn pieces<'a>(pieces: impl IntoIterator<Item = &'a str>) -> Self {
        let mut steps = vec![Step::role()];
        steps.extend(pieces.into_iter().map(Step::content));
        steps.extend([Step::finish("stop"), Step::done()]);
        Self::sse(steps)
    }

    /// `status` with an OpenAI-style JSON error body holding [`FakeProvider::ERROR_BODY`].
    pub fn status(status: u16) -> Self {
        let body = json!({"error": {
            "message": FakeProvider::ERROR_BODY,
            "type": "fake_error",
            "code": status,
        }});
        Self::json(status, &body)
    }

    /// `status` with `body` as JSON.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            kind: Kind::Whole {
                status,
                body: body.to_string().into_bytes(),
            },
            headers: Vec::new(),
        }
    }

    /// A whole (non-streamed) chat completion whose message is `content`.
    pub fn completion(content: &str) -> Self {
        Self::json(
            200,
            &json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }),
        )
    }

    /// Reads the request and never answers, not even a status line.
    pub fn hang() -> Self {
        Self {
            kind: Kind::Hang,
            headers: Vec::new(),
        }
    }

    /// Reads the request and closes the connection without answering.
    pub fn close() -> Self {
        Self {
            kind: Kind::Close,
            headers: Vec::new(),
        }
    }

    /// The reply with one more header, such as `Retry-After`.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One step of a streamed reply.
#[derive(Debug, Clone)]
pub enum Step {
    /// Writes these bytes as one HTTP chunk, at once.
    Send(Vec<u8>),
    /// Waits.
    Pause(Duration),
    /// Waits forever (until the client hangs up).
    Hang,
    /// Closes the connection without ending the body.
    Reset,
}

impl Step {
    /// `data: <value>` and a blank line.
    pub fn data(value: &Value) -> Self {
        Self::Send(format!("data: {value}\n\n").into_bytes())
    }

    /// A chat completion chunk.
    fn chunk(choices: &Value) -> Value {
        json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "fake",
            "choices": choices,
        })
    }

    /// A chunk adding `text` to the reply.
    pub fn content(text: &str) -> Self {
        Self::data(&Self::chunk(&json!([
            {"index": 0, "delta": {"content": text}, "finish_reason": null}
        ])))
    }

    /// The first chunk of most servers: the role, no text.
    pub fn role() -> Self {
        Self::data(&Self::chunk(&json!([
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}
        ])))
    }

    /// A chunk saying the reply is complete for `reason` (`stop`, `length`...).
    pub fn finish(reason: &str) -> Self {
        Self::data(&Self::chunk(&json!([
            {"index": 0, "delta": {}, "finish_reason": reason}
        ])))
    }

    /// A usage chunk: empty `choices`, token counts (OpenAI's `include_usage`).
    pub fn usage() -> Self {
        let mut chunk = Self::chunk(&json!([]));
        chunk["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12});
        Self::data(&chunk)
    }

    /// An error object inside the stream, as llama.cpp and vLLM send it; its message
    /// is [`FakeProvider::ERROR_BODY`].
    pub fn error() -> Self {
        Self::data(&json!({"error": {
            "message": FakeProvider::ERROR_BODY,
            "type": "server_error",
            "code": 500,
        }}))
    }

    /// `data: [DONE]` and a blank line.
    pub fn done() -> Self {
        Self::raw("data: [DONE]\n\n")
    }

    /// A comment line, as servers send to keep a connection alive.
    pub fn keep_alive() -> Self {
        Self::raw(": keep-alive\n\n")
    }

    /// These bytes, as they are.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self::Send(bytes.into())
    }

    /// A wait of `millis` milliseconds.
    pub fn pause(millis: u64) -> Self {
        Self::Pause(Duration::from_millis(millis))
    }
}

/// A request the fake provider received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// `POST`, normally.
    pub method: String,
    /// The path, such as `/v1/chat/completions`.
    pub path: String,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
    /// The connection it came on: 0 for the first the provider accepted, 1 for the
    /// next... (requests on one connection reuse it).
    pub connection: usize,
}

impl ReceivedRequest {
    /// The value of the first header called `name` (any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The `role` and `content` of each message of the body.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| {
                        let text = |key: &str| m[key].as_str().unwrap_or_default().to_owned();
                        (text("role"), text("content"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A request and what became of its reply.
#[derive(Debug)]
struct Record {
    request: ReceivedRequest,
    hung_up: bool,
}

#[derive(Debug, Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    records: Mutex<Vec<Record>>,
    tasks: Mutex<Vec<AbortHandle>>,
    connections: std::sync::atomic::AtomicUsize,
}

/// The running fake provider; it stops when dropped.
#[derive(Debug)]
pub struct FakeProvider {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeProvider {
    /// Text in every error body the fake sends: a client must never repeat it.
    pub const ERROR_BODY: &'static str = "fake provider error body: do not repeat me";

    /// Starts a provider on 127.0.0.1 at a free port, answering the requests it gets,
    /// on any connection, with `replies` in order; a request beyond them gets a 500.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            replies: Mutex::new(replies.into_iter().collect()),
            ..Shared::default()
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = accepting
                    .connections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let task = tokio::spawn(serve(stream, connection, Arc::clone(&accepting)));
                accepting.tasks.lock().unwrap().push(task.abort_handle());
            }
        });
        shared.tasks.lock().unwrap().push(task.abort_handle());
        Self { address, shared }
    }

    /// The base URL to configure the client with: `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        let records = self.shared.records.lock().unwrap();
        records.iter().map(|r| r.request.clone()).collect()
    }

    /// Whether the client closed the connection of request `index` (0 for the first)
    /// before its reply was over.
    pub fn hung_up(&self, index: usize) -> bool {
        let records = self.shared.records.lock().unwrap();
        records.get(index).is_some_and(|r| r.hung_up)
    }

    /// Waits up to `within` for the client to close the connection of request `index`
    /// before its reply was over; whether it did.
    pub async fn wait_for_hang_up(&self, index: usize, within: Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        loop {
            if self.hung_up(index) {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        for task in self.shared.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// How the reply to a request ended.
enum Outcome {
    /// The reply is over; the connection may carry another request.
    Over,
    /// The client closed the connection before the reply was over.
    HungUp,
    /// The script closed the connection.
    Closed,
}

/// Answers the requests of one connection.
async fn serve(stream: TcpStream, connection: usize, shared: Arc<Shared>) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut reader, &mut buffer, connection).await {
        let index = {
            let mut records = shared.records.lock().unwrap();
            records.push(Record {
                request,
                hung_up: false,
            });
            records.len() - 1
        };
        let reply = shared.replies.lock().unwrap().pop_front();
        let reply = reply.unwrap_or_else(|| Reply::json(500, &json!({"error": "unscripted"})));
        let outcome = tokio::select! {
            outcome = play(&mut writer, reply) => outcome,
            () = hang_up(&mut reader, &mut buffer) => Outcome::HungUp,
        };
        match outcome {
            Outcome::Over => {}
            Outcome::HungUp => {
                shared.records.lock().unwrap()[index].hung_up = true;
                return;
            }
            Outcome::Closed => return,
        }
    }
}

/// Returns when the client closes the connection; keeps what else it sends.
async fn hang_up(reader: &mut OwnedReadHalf, buffer: &mut Vec<u8>) {
    let mut bytes = [0; 4096];
    loop {
        match reader.read(&mut bytes).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&bytes[..n]),
        }
    }
}

/// The next request on the connection; `None` when it closes first.
async fn read_request(
    reader: &mut OwnedReadHalf,
    buffer: &mut Vec<u8>,
    connection: usize,
) -> Option<ReceivedRequest> {
    let mut bytes = [0; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = reader.read(&mut bytes).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&bytes[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let n = reader.read(&mut bytes).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&bytes[..n]);
    }
    let body =
        serde_json::from_slice(&buffer[body_start..body_start + length]).unwrap_or(Value::Null);
    buffer.drain(..body_start + length);
    Some(ReceivedRequest {
        method,
        path,
        headers,
        body,
        connection,
    })
}

/// Plays `reply`; a failed write means the client hung up.
async fn play(writer: &mut OwnedWriteHalf, reply: Reply) -> Outcome {
    let extra: String = reply
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    match reply.kind {
        Kind::Hang => std::future::pending().await,
        Kind::Close => Outcome::Closed,
        Kind::Whole { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n{extra}\r\n",
                body.len()
            );
            if write(writer, head.as_bytes()).await && write(writer, &body).await {
                Outcome::Over
            } else {
                Outcome::HungUp
            }
        }
        Kind::Sse(steps) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 cache-control: no-cache\r\ntransfer-encoding: chunked\r\n{extra}\r\n"
            );
            if !write(writer, head.as_bytes()).await {
                return Outcome::HungUp;
            }
            for step in steps {
                match step {
                    Step::Send(bytes) if bytes.is_empty() => {}
                    Step::Send(bytes) => {
                        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
                        chunk.extend_from_slice(&bytes);
                        chunk.extend_from_slice(b"\r\n");
                        if !write(writer, &chunk).await {
                            return Outcome::HungUp;
                        }
                    }
                    Step::Pause(duration) => tokio::time::sleep(duration).await,
                    Step::Hang => std::future::pending().await,
                    Step::Reset => return Outcome::Closed,
                }
            }
            if write(writer, b"0\r\n\r\n").await {
                Outcome::Over
            } else {
                Outcome::HungUp
            }
        }
    }
}

/// Writes and flushes `bytes`; whether it worked.
async fn write(writer: &mut OwnedWriteHalf, bytes: &[u8]) -> bool {
    writer.write_all(bytes).await.is_ok() && writer.flush().await.is_ok()
}
