//! Secrets never reach the logs: a whole signup / login / logout cycle, with the mailed
//! links of an account used, logged at TRACE level (the service's own events and,
//! through `log`, its libraries'), holds neither the password, nor its hash, nor the
//! session cookie or key, nor a mailed token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/captured_logs.rs"]
mod captured_logs;
#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::io::Write;

use captured_logs::Captured;
use chatbot_mail::testing::ReceivedMail;
use chatbot_persistence::testing::TestDb;
use serde_json::json;
use support::{SECRET, Server, settings};

#[actix_web::test]
async fn a_login_cycle_logs_no_secret() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .init();

    let password = "correct horse battery staple";
    let db = TestDb::sqlite();
    let mail = tempfile::tempdir().unwrap();
    let server = Server::start(settings(
        &db,
        &[
            ("CHATBOT__LOG__LEVEL", "trace"),
            ("CHATBOT__MAIL__FILE_DIR", mail.path().to_str().unwrap()),
        ],
    ))
    .await;
    let mut alice = server.client();
    let credentials =
        json!({"username": "alice", "password": password, "email": "alice@example.com"});
    assert_eq!(
        alice.post("/api/signup", credentials.clone()).await.status,
        201
    );
    assert_eq!(alice.post("/api/login", credentials).await.status, 200);
    let cookie = alice.cookie.clone().unwrap();
    let id = alice.create_conversation("chat").await;
    let sent = alice
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(sent.status, 201);
    let wrong = json!({"username": "alice", "password": "wrong horse battery staple"});
    assert_eq!(server.client().post("/api/login", wrong).await.status, 401);
    let tokens = used_mailed_tokens(&server, mail.path()).await;
    assert_eq!(alice.get("/api/logout").await.status, 200);
    server.stop().await;

    let logs = captured.text();
    if std::env::var_os("SHOW_LOGS").is_some() {
        let _ = writeln!(std::io::stderr(), "{logs}");
    }
    assert!(logs.lines().count() > 5, "the capture works: {logs}");
    let cookie_value = cookie.split_once('=').unwrap().1;
    for (secret, what) in [
        (password, "the password"),
        ("wrong horse battery staple", "a wrong password"),
        ("$2b$", "a bcrypt hash"),
        (cookie_value, "the session cookie"),
        (SECRET, "the cookie-signing secret"),
        (&cookie_value[cookie_value.len() - 64..], "the session key"),
        (&tokens[0], "the verification token"),
        (&tokens[1], "the reset token"),
    ] {
        assert!(!logs.contains(secret), "{what} is in the logs:\n{logs}");
    }
}

/// Asks for a password reset, then uses the verification and reset links mailed as
/// files into `dir`; returns their tokens.
async fn used_mailed_tokens(server: &Server, dir: &std::path::Path) -> [String; 2] {
    let mut anyone = server.client();
    let forgot = json!({"email": "alice@example.com"});
    assert_eq!(
        anyone.post("/api/password/forgot", forgot).await.status,
        202
    );
    let mut mails = Vec::new();
    for _ in 0..200 {
        mails = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .map(|path| ReceivedMail::parse(&std::fs::read_to_string(path).unwrap()))
            .collect();
        if mails.len() == 2 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let token = |page| {
        mails
            .iter()
            .find_map(|mail| mail.token(page))
            .unwrap_or_else(|| panic!("no {page} mail in {mails:?}"))
    };
    let (verify, reset) = (token("/verify"), token("/reset"));
    let verified = anyone
        .post("/api/email/verify", json!({"token": verify}))
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    let body = json!({"token": reset, "new_password": "a new password"});
    assert_eq!(anyone.post("/api/password/reset", body).await.status, 200);
    [verify, reset]
}
