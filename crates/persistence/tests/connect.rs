//! Opening databases: what is created, and what an unreachable one says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chatbot_domain::ports::StoreProbe;
use chatbot_persistence::{Backend, ConnectError, Database, DatabaseUrl, PoolOptions};

#[tokio::test]
async fn sqlite_file_and_its_folders_are_created_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/data/chatbot.db");
    let url = DatabaseUrl::parse(&format!("sqlite://{}", file.display())).unwrap();

    let db = Database::connect(&url, &PoolOptions::default()).unwrap();
    db.run_pending_migrations().unwrap();

    assert!(file.is_file());
    assert_eq!(db.backend(), Backend::Sqlite);
    db.ping().await.unwrap();
}

#[test]
fn an_unreachable_server_is_reported_with_the_drivers_reason() {
    let url = DatabaseUrl::parse("postgres://postgres:hunter2@127.0.0.1:1/test").unwrap();
    let options = PoolOptions {
        connection_timeout: Duration::from_millis(500),
        ..PoolOptions::default()
    };

    let error = Database::connect(&url, &options).unwrap_err();
    assert!(matches!(error, ConnectError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(
        message.to_lowercase().contains("refused"),
        "the real reason: {message}"
    );
    assert!(
        !message.contains("hunter2"),
        "no password in errors: {message}"
    );
}
