//! The `chatbot` binary as operators run it: a process of its own, stopped by signals,
//! logging JSON lines, and several of them sharing one database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chatbot_persistence::testing::TestDb;
use process::{Chatbot, eventually};
use serde_json::{Value, json};

/// One HTTP/1.1 connection written by hand, so that a test knows which connection a
/// request goes on (awc's pool may open another).
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(address: &str) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        // The server hashes at a high cost, on two cores shared with other tests.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Self {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) {
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
    }

    /// The next answer's status and JSON body; an error if the server closes the
    /// connection first.
    fn answer(&mut self) -> std::io::Result<(u16, Value)> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// Starts a signup that hashes at `cost` (a second or more from cost 14), lets it get
/// under way, then sends `signal`; the thread returned reads the signup's answer.
async fn signal_during_a_slow_signup(
    server: &Chatbot,
    signal: &str,
) -> std::thread::JoinHandle<std::io::Result<(u16, Value)>> {
    // The signup goes on a connection the server has already answered on, so it is
    // being served when the signal comes: a connection still in the listen backlog
    // then would be dropped unanswered.
    let mut connection = Connection::open(server.address());
    connection.send("GET", "/api/test", None);
    assert_eq!(connection.answer().unwrap().0, 200);
    connection.send(
        "POST",
        "/api/signup",
        Some(&json!({"username": "slow", "password": "correct horse"})),
    );
    let signup = std::thread::spawn(move || connection.answer());
    // Each server hashes its decoy password at start too, at the same cost, on the
    // same two cores as the other tests' servers: the signup takes a while.
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    assert!(!signup.is_finished(), "the signup should still be hashing");
    server.signal(signal);
    signup
}

async fn a_signal_lets_the_request_in_flight_finish(signal: &str) {
    let db = TestDb::sqlite();
    let mut server = Chatbot::start(&db, &[("CHATBOT__AUTH__BCRYPT_COST", "15")]);
    let signup = signal_during_a_slow_signup(&server, signal).await;

    assert!(
        eventually(Duration::from_secs(5), || !server.accepts()).await,
        "new connections are refused once stopping"
    );
    let (status, body) = signup.join().unwrap().expect("the signup is answered");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"message": "User created successfully"}));
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 1);
    let status = server.exit_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(server.logged(|line| line["message"] == "stopped").len(), 1);
}

#[actix_web::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    a_signal_lets_the_request_in_flight_finish("TERM").await;
}

#[actix_web::test]
async fn ctrl_c_is_as_graceful_as_sigterm() {
    a_signal_lets_the_request_in_flight_finish("INT").await;
}

#[actix_web::test]
async fn the_shutdown_timeout_bounds_the_wait_for_requests_in_flight() {
    let db = TestDb::sqlite();
    // Cost 18 hashes for a quarter of a minute or more: far past the timeout.
    let mut server = Chatbot::start(
        &db,
        &[
            ("CHATBOT__AUTH__BCRYPT_COST", "18"),
            ("CHATBOT__SERVER__SHUTDOWN_TIMEOUT_SECONDS", "1"),
        ],
    );
    let stopping = Instant::now();
    let _signup = signal_during_a_slow_signup(&server, "TERM").await;
    let status = server.exit_within(Duration::from_secs(12));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(12),
        "stopped after {:?}",
        stopping.elapsed()
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);
}

#[actix_web::test]
async fn every_request_is_logged_once_with_its_route_status_user_and_id() {
    let db = TestDb::sqlite();
    let server = Chatbot::start(&db, &[]);
    let mut alice = server.client();
    let user = alice.sign_up_and_log_in("alice").await;
    let conversation = alice.create_conversation("logged").await;
    let path = format!("/api/conversations/{conversation}/messages");
    let given = alice
        .send(
            awc::http::Method::GET,
            &path,
            None,
            &[("X-Request-Id", "trace-42.a:b")],
        )
        .await;
    assert_eq!(given.status, 200);
    assert_eq!(given.header("x-request-id"), Some("trace-42.a:b"));
    let made = alice.get("/api/nowhere").await;
    let made_id = made.header("x-request-id").unwrap().to_owned();
    assert_eq!(made_id.len(), 32, "{made_id}");
    let forged = alice
        .send(
            awc::http::Method::GET,
            "/api/test",
            None,
            &[("X-Request-Id", "a\"}{\"status\":1")],
        )
        .await;
    assert_ne!(forged.header("x-request-id"), Some("a\"}{\"status\":1"));

    // Signup, login, create, list, 404, forged: six requests, six lines, which the
    // reader thread may not have collected yet.
    let request_lines = || server.logged(|line| line["route"].is_string()).len();
    assert!(eventually(Duration::from_secs(5), || request_lines() >= 6).await);
    let requests = |id: &str| {
        let id = id.to_owned();
        server.logged(move |line| line["span"]["id"] == id.as_str() && line["route"].is_string())
    };
    let lines = requests("trace-42.a:b");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/conversations/{id}/messages");
    assert_eq!(line["path"], path.as_str());
    assert_eq!(line["status"], 200);
    assert_eq!(line["user"], user);
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0, "{line}");
    let unknown = requests(&made_id);
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(unknown[0]["status"], 404);
    assert_eq!(unknown[0]["route"], "(no route)");
    assert_eq!(unknown[0]["path"], "/api/nowhere");
    assert!(unknown[0]["user"].is_null(), "no user was asked for");
    assert_eq!(request_lines(), 6);
}

#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
#[actix_web::test]
async fn two_instances_on_one_database_share_sessions_and_data() {
    let db = TestDb::postgres();
    let one = Chatbot::start(&db, &[]);
    let two = Chatbot::start(&db, &[]);
    let credentials = json!({"username": "roamer", "password": "correct horse"});

    let mut on_one = one.client();
    assert_eq!(
        on_one.post("/api/signup", credentials.clone()).await.status,
        201
    );
    let mut on_two = two.client();
    let login = on_two.post("/api/login", credentials).await;
    assert_eq!(login.status, 200, "{login:?}");
    // The cookie the second instance set works on the first.
    on_one.cookie.clone_from(&on_two.cookie);
    let created = on_one
        .post("/api/conversations", json!({"name": "shared"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let listed = on_two.get("/api/conversations").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body[0]["name"], "shared");

    assert_eq!(on_one.get("/api/logout").await.status, 200);
    // The second instance holds the same cookie, whose session has ended everywhere.
    on_two
        .get("/api/conversations")
        .await
        .assert_error(401, "unauthorized");
    on_one
        .get("/api/conversations")
        .await
        .assert_error(401, "unauthorized");
}
