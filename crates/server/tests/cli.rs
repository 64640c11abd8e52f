//! The `chatbot` binary: its commands, and how it refuses a bad configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use chatbot_persistence::testing::TestDb;

/// Runs `chatbot args` in `folder` with only `environment` set.
fn chatbot(folder: &Path, args: &[&str], environment: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .args(args)
        .current_dir(folder)
        .env_clear()
        .envs(environment.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts a clean failure: exit code 1 and one `error: …` line containing `expected`.
fn assert_refused(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let errors: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(expected), "{expected:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_configuration_stops_start_up_with_one_clear_line() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path();
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("DATABASE_URL", "mysql://localhost/chat")],
            "scheme \"mysql\" is not supported",
        ),
        (&[("DATABASE_URL", "data/chatbot.db")], "has no scheme"),
        (&[("DATABASE_URL", "sqlite://:memory:")], "in-memory SQLite"),
        (&[("APP_ENV", "production")], "SECRET_KEY is not set"),
        (
            &[("APP_ENV", "production"), ("SECRET_KEY", "short")],
            "SECRET_KEY is too short",
        ),
        (
            &[("APP_ENV", "staging")],
            "APP_ENV=\"staging\" is not a profile",
        ),
    ];
    for (environment, expected) in cases {
        assert_refused(&chatbot(path, &[], environment), expected);
    }
    assert_refused(
        &chatbot(path, &[], &[("PORT", "not a port")]),
        "invalid configuration",
    );
    let unreachable = [
        (
            "DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/test",
        ),
        ("CHATBOT__DATABASE__CONNECT_TIMEOUT_SECONDS", "1"),
    ];
    let output = chatbot(path, &["migrate"], &unreachable);
    assert_refused(&output, "Connection refused");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("hunter2"));
    for (key, value, expected) in [
        ("CHATBOT__CORS__ALLOWED_ORIGINS", "*", "wildcard"),
        (
            "CHATBOT__CORS__ALLOWED_ORIGINS",
            "localhost:3000",
            "not an http:// or https:// origin",
        ),
        (
            "CHATBOT__CORS__ALLOWED_ORIGINS",
            "http://localhost:3000/app",
            "has a path",
        ),
        (
            "CHATBOT__SERVER__WORKERS",
            "0",
            "server.workers must be at least 1",
        ),
        (
            "CHATBOT__DATABASE__CONNECT_TIMEOUT_SECONDS",
            "0",
            "at least 1",
        ),
        ("CHATBOT__LOG__LEVEL", "chatbot=loud", "log.level"),
        (
            "CHATBOT__AUTH__BCRYPT_COST",
            "3",
            "bcrypt cost must be between 4 and 31",
        ),
    ] {
        assert_refused(&chatbot(path, &[], &[(key, value)]), expected);
    }
}

#[test]
fn the_dot_env_file_is_read() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join(".env"),
        "DATABASE_URL=oracle://db/chat\n",
    )
    .unwrap();
    assert_refused(
        &chatbot(folder.path(), &["migrate"], &[]),
        "\"oracle\" is not supported",
    );
}

#[test]
fn unknown_commands_print_the_usage() {
    let folder = tempfile::tempdir().unwrap();
    let output = chatbot(folder.path(), &["launch"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: chatbot"));
    let help = chatbot(folder.path(), &["--help"], &[]);
    assert!(help.status.success() && stdout(&help).contains("rollback [--all]"));
}

fn migrate_round_trip(db: &TestDb) {
    let folder = tempfile::tempdir().unwrap();
    let environment = [("DATABASE_URL", db.url())];
    let run = |args: &[&str]| {
        let output = chatbot(folder.path(), args, &environment);
        assert!(output.status.success(), "{args:?}: {output:?}");
        stdout(&output)
    };
    let states = |listing: String| -> Vec<String> {
        listing
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };

    assert_eq!(states(run(&["migrations"])), ["pending"; 4]);
    assert_eq!(run(&["migrate"]).lines().count(), 4);
    assert_eq!(states(run(&["migrations"])), ["applied"; 4]);
    assert_eq!(run(&["migrate"]).trim(), "nothing applied");
    assert!(run(&["rollback"]).contains("reverted"));
    assert_eq!(
        states(run(&["migrations"])),
        ["applied", "applied", "applied", "pending"]
    );
    assert_eq!(run(&["rollback", "--all"]).lines().count(), 3);
    assert_eq!(states(run(&["migrations"])), ["pending"; 4]);
    assert_eq!(run(&["rollback"]).trim(), "nothing reverted");
    assert_eq!(run(&["migrate"]).lines().count(), 4);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);
}

#[test]
fn sqlite_migrate_rollback_all_and_migrate_again() {
    migrate_round_trip(&TestDb::sqlite_unmigrated());
}

#[test]
fn postgres_migrate_rollback_all_and_migrate_again() {
    if let Some(db) = TestDb::postgres_unmigrated() {
        migrate_round_trip(&db);
    }
}

#[test]
fn serve_creates_the_sqlite_database_with_no_set_up() {
    let folder = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .current_dir(folder.path())
        .env_clear()
        .envs([("PORT", "0"), ("CHATBOT__AUTH__BCRYPT_COST", "4")])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let database = folder.path().join("data/chatbot.db");
    for _ in 0..100 {
        if database.is_file() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(database.is_file(), "data/chatbot.db created");
    assert!(running, "still serving");
}
