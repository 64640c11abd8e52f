//! Requests actix-http refuses before the API sees them (a malformed head, one too
//! large) are logged at INFO, once, never as an ERROR any client could raise; every
//! log event is one line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/captured_logs.rs"]
mod captured_logs;
#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use captured_logs::Captured;
use chatbot_persistence::testing::TestDb;
use chatbot_server::settings::{LogFormat, LogSettings};
use support::{Server, settings};
use tracing_subscriber::util::SubscriberInitExt;

/// Sends `request` as raw bytes and reads the answer's status line.
fn status_line(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[actix_web::test]
async fn protocol_errors_are_logged_once_at_info_on_one_line() {
    let captured = Captured::default();
    let log = LogSettings {
        level: "info".to_owned(),
        format: LogFormat::Text,
    };
    chatbot_server::logging::subscriber(&log, captured.clone(), false).init();

    let db = TestDb::sqlite();
    let server = Server::start(settings(&db, &[])).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let malformed = b"GET /api/test HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_vec();
    // Past actix-http's 128 KiB for a request head.
    let oversized = format!(
        "GET /api/test HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    )
    .into_bytes();
    let answers = actix_web::rt::task::spawn_blocking(move || {
        [
            status_line(&address, &malformed),
            status_line(&address, &oversized),
        ]
    })
    .await
    .unwrap();
    assert!(answers[0].starts_with("HTTP/1.1 400"), "{answers:?}");
    assert!(answers[1].starts_with("HTTP/1.1 431"), "{answers:?}");
    // A multi-line message stays one event, one line.
    tracing::warn!(
        error = "relation does not exist\nLINE 1: SELECT",
        "two lines in"
    );
    server.stop().await;

    let text = captured.text();
    assert!(!text.contains("ERROR"), "{text}");
    let refusals: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("refused a malformed request"))
        .collect();
    assert_eq!(refusals.len(), 2, "{text}");
    assert!(
        refusals.iter().all(|line| line.contains(" INFO ")),
        "{text}"
    );
    let two_lines_in: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("two lines in"))
        .collect();
    assert_eq!(two_lines_in.len(), 1, "{text}");
    assert!(
        two_lines_in[0].contains(r"relation does not exist\nLINE 1: SELECT"),
        "{text}"
    );
}
