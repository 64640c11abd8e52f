//! Slow and broken clients against the real `chatbot` binary: a body that never
//! comes, a head that trickles in, hundreds of idle connections, and clients that hang
//! up mid-request. None of them may keep other clients from being served, hold a
//! connection past its deadline, or leave anything half-written.
//!
//! The server runs with one worker (so that starvation would show) and short
//! timeouts: 1 s for the request head, 2 s for the body, 1 s to disconnect. Raw
//! clients are `std::net::TcpStream`s. The figures the tests measure are printed:
//! `cargo test -p chatbot-server --test slow_clients -- --nocapture --test-threads=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use chatbot_persistence::testing::TestDb;
use serde_json::{Value, json};

/// `server.client_request_timeout_seconds` in these tests.
const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// `server.client_body_timeout_seconds` in these tests.
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// `server.client_disconnect_timeout_seconds` in these tests.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// What a well-behaved request may take while misbehaving clients are connected; it
/// takes a few milliseconds.
const PROMPT: Duration = Duration::from_secs(1);

/// The `chatbot` process of [`process::Chatbot`] with the tests' short timeouts, and
/// raw clients of it.
struct Chatbot {
    process: process::Chatbot,
}

impl Chatbot {
    /// Starts the binary on `db` with the tests' short timeouts, changed by
    /// `overrides`, and waits until it serves.
    fn start(db: &TestDb, overrides: &[(&str, &str)]) -> Self {
        let seconds = |d: Duration| d.as_secs().to_string();
        let timeouts = [
            (
                "CHATBOT__SERVER__CLIENT_REQUEST_TIMEOUT_SECONDS",
                seconds(HEAD_TIMEOUT),
            ),
            (
                "CHATBOT__SERVER__CLIENT_BODY_TIMEOUT_SECONDS",
                seconds(BODY_TIMEOUT),
            ),
            (
                "CHATBOT__SERVER__CLIENT_DISCONNECT_TIMEOUT_SECONDS",
                seconds(DISCONNECT_TIMEOUT),
            ),
        ];
        let mut environment: Vec<(&str, &str)> = timeouts
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        environment.extend_from_slice(overrides);
        Self {
            process: process::Chatbot::start(db, &environment),
        }
    }

    /// Connects a raw client.
    fn connect(&self) -> TcpStream {
        TcpStream::connect(self.process.address()).unwrap()
    }

    /// A GET of `path` on a connection of its own: status, body, and how long it took.
    fn get(&self, path: &str) -> (u16, String, Duration) {
        let started = Instant::now();
        let mut stream = self.connect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        match read_reply(&mut stream, Duration::from_secs(10)) {
            Reply::Response { status, body } => (status, body, started.elapsed()),
            other => panic!("GET {path}: {other:?}"),
        }
    }

    /// A JSON POST of `body` to `path` on a connection of its own.
    fn post(&self, path: &str, body: &Value) -> (u16, Value, Duration) {
        let started = Instant::now();
        let mut stream = self.connect();
        stream.write_all(&post_request(path, body)).unwrap();
        match read_reply(&mut stream, Duration::from_secs(30)) {
            Reply::Response { status, body } => (
                status,
                serde_json::from_str(&body).unwrap_or(Value::Null),
                started.elapsed(),
            ),
            other => panic!("POST {path}: {other:?}"),
        }
    }

    /// Asserts that `GET /api/test` is answered 200 within [`PROMPT`]; returns the time.
    fn assert_serves_promptly(&self) -> Duration {
        let (status, body, took) = self.get("/api/test");
        assert_eq!(status, 200, "{body}");
        assert!(took < PROMPT, "GET /api/test took {took:?}");
        took
    }

    /// Signs `username` up and logs them in, each within `limit`.
    fn sign_up_and_log_in(&self, username: &str, limit: Duration) {
        let credentials = json!({"username": username, "password": "correct horse"});
        let (status, body, took) = self.post("/api/signup", &credentials);
        assert_eq!(status, 201, "{body}");
        assert!(took < limit, "signup took {took:?}");
        let (status, body, took) = self.post("/api/login", &credentials);
        assert_eq!(status, 200, "{body}");
        assert!(took < limit, "login took {took:?}");
    }

    /// The number of file descriptors the server has open (sockets included).
    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.process.pid())).map_or(0, Iterator::count)
    }

    /// The server's resident memory, in KiB.
    fn resident_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Waits up to `limit` for the server to log a line that passes `filter`.
    fn logged_within(&self, limit: Duration, filter: impl Fn(&Value) -> bool) -> bool {
        eventually(limit, || !self.process.logged(&filter).is_empty())
    }

    /// Asserts that the process still runs, and that nothing panicked or logged an
    /// error.
    fn assert_healthy(&mut self) {
        assert!(self.process.is_running(), "the server has exited");
        let stderr = self.process.stderr();
        assert!(
            !stderr.iter().any(|line| line.contains("panicked")),
            "{stderr:?}"
        );
        let errors = self
            .process
            .logged(|line| line["level"] == "ERROR" || line.to_string().contains("panic"));
        assert!(errors.is_empty(), "{errors:?}");
    }
}

/// How a raw client's request ended.
#[derive(Debug)]
enum Reply {
    /// A response, then the end of the connection (or a reset after it).
    Response { status: u16, body: String },
    /// The server closed the connection without a response.
    Closed,
    /// The server reset the connection without a response.
    Reset,
    /// Nothing happened within the limit.
    TimedOut,
}

/// Reads what the server sends on `stream` until it closes the connection or
/// `limit` passes.
fn read_reply(stream: &mut TcpStream, limit: Duration) -> Reply {
    read_reply_timed(stream, limit).0
}

/// [`read_reply`], and when its first byte came.
fn read_reply_timed(stream: &mut TcpStream, limit: Duration) -> (Reply, Option<Instant>) {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut first_byte = None;
    let mut buffer = [0; 4096];
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Reply::TimedOut;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => break Reply::Closed,
            Ok(n) => {
                first_byte.get_or_insert_with(Instant::now);
                received.extend_from_slice(&buffer[..n]);
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Reply::TimedOut;
            }
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break Reply::Reset,
            Err(error) => panic!("reading: {error}"),
        }
    };
    if received.is_empty() || matches!(ended, Reply::TimedOut) {
        assert!(
            received.is_empty(),
            "a partial response: {:?}",
            String::from_utf8_lossy(&received)
        );
        return (ended, first_byte);
    }
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let reply = Reply::Response {
        status,
        body: body.to_owned(),
    };
    (reply, first_byte)
}

/// A complete JSON POST request that asks for the connection to close after it.
fn post_request(path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Waits up to `limit` for `condition`.
fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn users(db: &TestDb, username: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM users WHERE username = '{username}'"
    ))
}

// (a) Headers, then never the body.

/// Clients that send a signup's head with `Content-Length: 100` and never the body
/// hold nothing up: meanwhile others are served (a signup included), and each stuck
/// client gets 408 `request_timeout` after the body timeout, then the connection
/// closes. No user is created for them.
fn a_body_that_never_comes_gets_408_and_holds_up_no_one(db: &TestDb) {
    const STUCK: usize = 20;
    let mut server = Chatbot::start(db, &[]);
    let started = Instant::now();
    // Each stuck client waits for its answer on a thread of its own, noting when the
    // answer came and when the connection closed.
    let stuck: Vec<_> = (0..STUCK)
        .map(|_| {
            let mut stream = server.connect();
            stream
                .write_all(
                    b"POST /api/signup HTTP/1.1\r\nHost: test\r\n\
                      Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
                )
                .unwrap();
            std::thread::spawn(move || {
                let limit = BODY_TIMEOUT + DISCONNECT_TIMEOUT + Duration::from_secs(3);
                let (reply, first_byte) = read_reply_timed(&mut stream, limit);
                (reply, first_byte, Instant::now())
            })
        })
        .collect();

    let mut slowest = Duration::ZERO;
    while started.elapsed() < BODY_TIMEOUT - Duration::from_millis(500) {
        slowest = slowest.max(server.assert_serves_promptly());
        std::thread::sleep(Duration::from_millis(50));
    }
    server.sign_up_and_log_in("meanwhile", PROMPT);

    // Each gets its 408 at the body timeout; the server then waits up to the
    // disconnect timeout for the client to close before it closes.
    let (mut answered, mut closed) = (Duration::ZERO, Duration::ZERO);
    for client in stuck {
        match client.join().unwrap() {
            (Reply::Response { status, body }, Some(at), end) => {
                assert_eq!(status, 408, "{body}");
                let body: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["code"], "request_timeout", "{body}");
                assert!(body["error"].is_string(), "{body}");
                answered = answered.max(at - started);
                closed = closed.max(end - started);
            }
            other => panic!("the stuck client got {other:?}"),
        }
    }
    assert!(
        answered >= BODY_TIMEOUT && answered < BODY_TIMEOUT + Duration::from_millis(1000),
        "the stuck clients were answered after {answered:?}"
    );
    assert!(
        closed < BODY_TIMEOUT + DISCONNECT_TIMEOUT + Duration::from_millis(1000),
        "the stuck clients' connections were closed after {closed:?}"
    );
    assert!(server.logged_within(Duration::from_secs(2), |line| {
        line["status"] == 408 && line["route"] == "/api/signup"
    }));
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);
    server.assert_healthy();
    println!(
        "[a] {STUCK} clients sent a signup's head and no body: meanwhile GET /api/test took \
         at most {slowest:?}, a signup and a login succeeded; all {STUCK} got 408 \
         request_timeout by {answered:?} (body timeout {BODY_TIMEOUT:?}), their connections \
         closed by {closed:?} (disconnect timeout {DISCONNECT_TIMEOUT:?})"
    );
}

#[test]
fn a_body_that_never_comes_gets_408_and_holds_up_no_one_on_sqlite() {
    a_body_that_never_comes_gets_408_and_holds_up_no_one(&TestDb::sqlite());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn a_body_that_never_comes_gets_408_and_holds_up_no_one_on_postgres() {
    a_body_that_never_comes_gets_408_and_holds_up_no_one(&TestDb::postgres());
}

/// A body that trickles in too slowly is cut off at the body timeout too: the
/// deadline is for the whole body, not between its bytes.
#[test]
fn a_body_that_trickles_in_is_cut_off_at_the_body_timeout() {
    let db = TestDb::sqlite();
    let mut server = Chatbot::start(&db, &[]);
    let body = json!({"username": "trickler", "password": "correct horse"}).to_string();
    let mut stream = server.connect();
    write!(
        stream,
        "POST /api/signup HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let started = Instant::now();
    // A byte every 200 ms: the body would take ten seconds.
    for byte in body.as_bytes().iter().take(20) {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > BODY_TIMEOUT + Duration::from_millis(500) {
            break;
        }
    }
    match read_reply(&mut stream, Duration::from_secs(3)) {
        Reply::Response { status, .. } => assert_eq!(status, 408),
        // The connection may be reset if the server closed it while bytes still came.
        Reply::Reset => {}
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(took < BODY_TIMEOUT + Duration::from_secs(2), "{took:?}");
    assert_eq!(users(&db, "trickler"), 0);
    server.assert_serves_promptly();
    server.assert_healthy();
    println!("[a] a body sent a byte every 200 ms was cut off after {took:?}");
}

/// A head that trickles in (slowloris) is cut off at the request timeout with 408,
/// and the connection closed; meanwhile others are served.
#[test]
fn a_head_that_trickles_in_gets_408_at_the_request_timeout() {
    const SLOW: usize = 20;
    let db = TestDb::sqlite();
    let mut server = Chatbot::start(&db, &[]);
    let started = Instant::now();
    let mut streams: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let mut stream = server.connect();
            stream.write_all(b"GET /api/test HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < HEAD_TIMEOUT + Duration::from_millis(500) {
        for stream in &mut streams {
            // The server may have answered and closed already; that is what we want.
            let _ = stream.write_all(b"X-Slow: 1\r\n");
        }
        slowest = slowest.max(server.assert_serves_promptly());
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut answered = Duration::ZERO;
    for stream in &mut streams {
        match read_reply(stream, Duration::from_secs(3)) {
            Reply::Response { status, .. } => assert_eq!(status, 408),
            Reply::Closed | Reply::Reset => {}
            Reply::TimedOut => panic!("a slow head still open after {:?}", started.elapsed()),
        }
        answered = answered.max(started.elapsed());
    }
    assert!(
        answered < HEAD_TIMEOUT + DISCONNECT_TIMEOUT + Duration::from_secs(1),
        "{answered:?}"
    );
    server.assert_healthy();
    println!(
        "[a] {SLOW} heads sent a header every 100 ms: cut off (408) by {answered:?} \
         (request timeout {HEAD_TIMEOUT:?}); meanwhile GET /api/test took at most {slowest:?}"
    );
}

// (b) Idle connections.

/// 500 connections opened at once that never send a byte: a normal client is still
/// served at once, and every idle connection is closed after the request timeout.
#[test]
fn five_hundred_idle_connections_block_no_one_and_are_closed_after_the_request_timeout() {
    const IDLE: usize = 500;
    let db = TestDb::sqlite();
    let mut server = Chatbot::start(&db, &[]);
    let files_before = server.open_files();
    let memory_before = server.resident_kib();
    let started = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE).map(|_| server.connect()).collect();
    let opened = started.elapsed();
    let served = server.assert_serves_promptly();
    let (status, _, _) = server.post(
        "/api/signup",
        &json!({"username": "among_idlers", "password": "correct horse"}),
    );
    assert_eq!(status, 201);
    // The server holds them (accepted, not merely queued by the kernel).
    assert!(
        eventually(Duration::from_millis(800), || server.open_files()
            >= files_before + IDLE),
        "the server has {} files open, {files_before} before",
        server.open_files()
    );
    let files_held = server.open_files();
    let memory_held = server.resident_kib();

    let mut closed = Duration::ZERO;
    let mut answered_408 = 0;
    for stream in &mut idle {
        match read_reply(stream, HEAD_TIMEOUT + Duration::from_secs(4)) {
            Reply::Response { status, .. } => {
                assert_eq!(status, 408);
                answered_408 += 1;
            }
            Reply::Closed | Reply::Reset => {}
            Reply::TimedOut => panic!("an idle connection open after {:?}", started.elapsed()),
        }
        closed = closed.max(started.elapsed());
    }
    assert!(
        closed < HEAD_TIMEOUT + DISCONNECT_TIMEOUT + Duration::from_secs(1),
        "{closed:?}"
    );
    assert!(
        eventually(Duration::from_secs(2), || server.open_files()
            < files_before + 10),
        "{} files still open, {files_before} before",
        server.open_files()
    );
    server.assert_serves_promptly();
    server.assert_healthy();
    let per_connection = memory_held.saturating_sub(memory_before) * 1024 / IDLE as u64;
    println!(
        "[b] {IDLE} idle connections opened in {opened:?}; meanwhile GET /api/test took \
         {served:?} and a signup succeeded; the server held {files_held} files \
         ({files_before} before) and {memory_held} KiB ({memory_before} KiB before, about \
         {per_connection} bytes per connection); all {IDLE} closed by {closed:?} \
         ({answered_408} with a 408 first; request timeout {HEAD_TIMEOUT:?})"
    );
}

/// Past `server.max_connections` new connections wait in the backlog, and are served
/// as soon as the idle ones ahead of them time out: a bounded wait, not a refusal.
#[test]
fn beyond_max_connections_a_client_waits_only_until_idle_ones_time_out() {
    const IDLE: usize = 500;
    let db = TestDb::sqlite();
    let server = Chatbot::start(&db, &[("CHATBOT__SERVER__MAX_CONNECTIONS", "400")]);
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| server.connect()).collect();
    let (status, _, took) = server.get("/api/test");
    assert_eq!(status, 200);
    // It waited for the first idle ones to time out: the limit applies.
    assert!(
        took > HEAD_TIMEOUT / 2 && took < HEAD_TIMEOUT + Duration::from_secs(3),
        "{took:?}"
    );
    drop(idle);
    println!(
        "[b] with max_connections = 400 and {IDLE} idle connections, a new client was \
         served after {took:?} (request timeout {HEAD_TIMEOUT:?}; idle ones opened {:?} \
         before)",
        started.elapsed().saturating_sub(took)
    );
}

/// A connection kept alive after its response, then left idle, is closed after
/// `server.keep_alive_seconds`.
#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let db = TestDb::sqlite();
    let mut server = Chatbot::start(&db, &[("CHATBOT__SERVER__KEEP_ALIVE_SECONDS", "1")]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /api/test HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let (reply, first_byte) = read_reply_timed(&mut stream, Duration::from_secs(5));
    let closed = Instant::now();
    match reply {
        Reply::Response { status, .. } => assert_eq!(status, 200),
        other => panic!("{other:?}"),
    }
    let idle = closed - first_byte.unwrap();
    assert!(
        idle > Duration::from_millis(500) && idle < Duration::from_secs(3),
        "closed {idle:?} after the response"
    );
    server.assert_healthy();
    println!(
        "[b] with keep_alive_seconds = 1, an idle kept-alive connection was closed {idle:?} after its response"
    );
}

/// The listen backlog is `server.backlog`, not the 128 std binds with (`ss` shows a
/// listening socket's backlog as its Send-Q; skipped where there is no `ss`).
#[test]
fn the_listen_backlog_is_the_configured_one() {
    let db = TestDb::sqlite();
    let server = Chatbot::start(&db, &[("CHATBOT__SERVER__BACKLOG", "777")]);
    let port = server.process.address().rsplit(':').next().unwrap();
    let Ok(output) = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
    else {
        eprintln!("no ss: skipped");
        return;
    };
    let listing = String::from_utf8_lossy(&output.stdout);
    let backlog = listing.split_whitespace().nth(2);
    assert_eq!(backlog, Some("777"), "{listing}");
}

// (c) Clients that hang up mid-request.

/// A client that sends half a body and hangs up, one that hangs up (FIN) while its
/// signup hashes at cost 14, and ones whose connection is reset while theirs hash:
/// the server keeps serving others meanwhile, and every signup either happened whole
/// (the user can log in) or not at all.
fn clients_that_hang_up_mid_request_leave_nothing_half_done(db: &TestDb) {
    let mut server = Chatbot::start(db, &[("CHATBOT__AUTH__BCRYPT_COST", "14")]);
    let credentials = |username: &str| json!({"username": username, "password": "correct horse"});

    // Half a body, then gone.
    let request = post_request("/api/signup", &credentials("half_body"));
    let mut stream = server.connect();
    stream.write_all(&request[..request.len() - 20]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(stream);

    // A signup whose client hangs up (FIN) while it hashes.
    let mut hung_up = server.connect();
    hung_up
        .write_all(&post_request("/api/signup", &credentials("hung_up")))
        .unwrap();
    // Connections reset (RST) while their signups hash: each sends a request first,
    // whose unread response makes closing the socket a reset, then a signup.
    let resets: Vec<TcpStream> = (0..3)
        .map(|index| {
            let mut stream = server.connect();
            let mut requests = b"GET /api/test HTTP/1.1\r\nHost: test\r\n\r\n".to_vec();
            requests.extend(post_request(
                "/api/signup",
                &credentials(&format!("reset_{index}")),
            ));
            stream.write_all(&requests).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    hung_up.shutdown(Shutdown::Both).unwrap();
    drop(hung_up);
    drop(resets);

    // Meanwhile the server serves others at once: hashing is off its threads.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(2) {
        slowest = slowest.max(server.assert_serves_promptly());
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_eq!(users(db, "half_body"), 0);
    // A client that hangs up cleanly may be waiting for its answer (HTTP allows
    // half-closed connections): its signup completes.
    assert!(
        eventually(Duration::from_secs(10), || users(db, "hung_up") == 1),
        "the signup whose client hung up did not complete"
    );
    // A reset connection abandons its request: the signup is dropped, whole.
    let reset_users: i64 = (0..3)
        .map(|index| users(db, &format!("reset_{index}")))
        .sum();
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1 + reset_users);
    // The users that exist are whole: they can log in.
    let (status, body, _) = server.post("/api/login", &credentials("hung_up"));
    assert_eq!(status, 200, "{body}");
    for index in 0..3 {
        let username = format!("reset_{index}");
        if users(db, &username) == 1 {
            let (status, body, _) = server.post("/api/login", &credentials(&username));
            assert_eq!(status, 200, "{body}");
        }
    }
    // And the hashing threads are free: nothing leaked a slot.
    let (status, body, took) = server.post("/api/signup", &credentials("afterwards"));
    assert_eq!(status, 201, "{body}");
    server.assert_healthy();
    println!(
        "[c] half a body then hang-up: no user; hang-up (FIN) during a cost-14 signup: \
         the signup completed and logs in; 3 resets (RST) during cost-14 signups: \
         {reset_users} of 3 users created; meanwhile GET /api/test took at most \
         {slowest:?}; a signup afterwards took {took:?}"
    );
}

#[test]
fn clients_that_hang_up_mid_request_leave_nothing_half_done_on_sqlite() {
    clients_that_hang_up_mid_request_leave_nothing_half_done(&TestDb::sqlite());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn clients_that_hang_up_mid_request_leave_nothing_half_done_on_postgres() {
    clients_that_hang_up_mid_request_leave_nothing_half_done(&TestDb::postgres());
}
