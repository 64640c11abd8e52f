//! The `chatbot` binary: its commands, and how it refuses a bad configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

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

/// How many migrations the binary carries (the same number for both databases).
fn migration_count() -> usize {
    chatbot_persistence::embedded_migrations(chatbot_persistence::Backend::Sqlite)
        .unwrap()
        .len()
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
    let weak = "a".repeat(32);
    let cases: [(&[(&str, &str)], &str); 7] = [
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
            &[("APP_ENV", "production"), ("SECRET_KEY", &weak)],
            "SECRET_KEY is too predictable (about 0 bits of entropy",
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
        "server.port (set by the environment variable PORT): invalid type",
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
            "server.workers (set by the environment variable CHATBOT__SERVER__WORKERS): must be at least 1",
        ),
        (
            "CHATBOT__DATABASE__CONNECT_TIMEOUT_SECONDS",
            "0",
            "at least 1",
        ),
        ("CHATBOT__LOG__LEVEL", "chatbot=loud", "log.level"),
        (
            "CHATBOT__BOT__PROVIDER",
            "openai",
            "bot.model (the default): is required when bot.provider is openai: set CHATBOT__BOT__MODEL",
        ),
        (
            "CHATBOT__BOT__PROVIDER",
            "gpt",
            "bot.provider (set by the environment variable CHATBOT__BOT__PROVIDER): \"gpt\" is not one of simulated, openai",
        ),
        (
            "CHATBOT__LOG__FORMAT",
            "yaml",
            "log.format (set by the environment variable CHATBOT__LOG__FORMAT): \"yaml\" is not one of text, json",
        ),
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
        "invalid database.url (set by DATABASE_URL in .env): database URL scheme \"oracle\" is not supported",
    );
    let environment_wins = chatbot(
        folder.path(),
        &["migrate"],
        &[("DATABASE_URL", "sqlite://data/chatbot.db")],
    );
    assert!(environment_wins.status.success(), "{environment_wins:?}");
}

#[test]
fn an_unreachable_database_is_one_line_naming_where_its_url_was_set() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join(".env"),
        "DATABASE_URL=postgres://chatbot:hunter2@127.0.0.1:1/chatbot\n",
    )
    .unwrap();
    let output = chatbot(folder.path(), &[], &[]);
    assert_refused(
        &output,
        "database.url (set by DATABASE_URL in .env): cannot connect to the database at postgres://chatbot:***@127.0.0.1:1/chatbot",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let logs = stdout(&output);
    assert!(!logs.contains("ERROR") && !logs.contains("r2d2"), "{logs}");
    assert!(!logs.contains("hunter2") && !stderr.contains("hunter2"));
}

#[test]
fn the_docker_dot_env_example_leaves_the_first_command_on_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example");
    std::fs::copy(example, folder.path().join(".env")).unwrap();
    let output = chatbot(folder.path(), &["migrate"], &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(folder.path().join("data/chatbot.db").is_file());
}

#[test]
fn misspelt_settings_and_a_bad_rust_log_are_warned_about() {
    let folder = tempfile::tempdir().unwrap();
    let output = chatbot(
        folder.path(),
        &["migrate"],
        &[("CHATBOT__SERVER__PROT", "8080"), ("RUST_LOG", "chatbot=[")],
    );
    assert!(output.status.success(), "{output:?}");
    let logs = stdout(&output);
    assert!(
        logs.contains(
            "CHATBOT__SERVER__PROT sets no setting (did you mean CHATBOT__SERVER__PORT?); it is ignored"
        ),
        "{logs}"
    );
    assert!(
        logs.contains("RUST_LOG \"chatbot=[\" is not a tracing filter"),
        "{logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes into a pipe: {logs}"
    );
}

#[test]
fn version_and_help_after_a_command() {
    let folder = tempfile::tempdir().unwrap();
    let version = chatbot(folder.path(), &["--version"], &[]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        format!("chatbot {}", env!("CARGO_PKG_VERSION"))
    );
    for command in ["migrate", "rollback", "migrations", "serve"] {
        let help = chatbot(folder.path(), &[command, "--help"], &[]);
        assert!(help.status.success(), "{command} --help: {help:?}");
        assert!(stdout(&help).contains("usage: chatbot"));
    }
    assert!(
        std::fs::read_dir(folder.path()).unwrap().next().is_none(),
        "help touches no database"
    );
}

#[test]
fn listing_migrations_creates_no_sqlite_file() {
    let folder = tempfile::tempdir().unwrap();
    let output = chatbot(folder.path(), &["migrations"], &[]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output).matches("pending").count(),
        migration_count()
    );
    assert!(!folder.path().join("data").exists(), "no data/ folder");
}

#[test]
fn rollback_all_without_yes_refuses_naming_the_database_and_drops_nothing() {
    let db = TestDb::sqlite();
    let folder = tempfile::tempdir().unwrap();
    let environment = [("DATABASE_URL", db.url())];
    let refused = chatbot(folder.path(), &["rollback", "--all"], &environment);
    assert_refused(
        &refused,
        &format!("not reverting every migration of {}", db.url()),
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM users"),
        0,
        "tables kept"
    );
    let listing = stdout(&chatbot(folder.path(), &["migrations"], &environment));
    assert_eq!(
        listing.matches("applied").count(),
        migration_count(),
        "{listing}"
    );
}

#[test]
fn unknown_commands_print_the_usage() {
    let folder = tempfile::tempdir().unwrap();
    let output = chatbot(folder.path(), &["launch"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: chatbot"));
    let help = chatbot(folder.path(), &["--help"], &[]);
    assert!(help.status.success() && stdout(&help).contains("rollback --all [--yes]"));
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

    let all = migration_count();
    assert_eq!(states(run(&["migrations"])), vec!["pending"; all]);
    assert_eq!(run(&["migrate"]).lines().count(), all);
    assert_eq!(states(run(&["migrations"])), vec!["applied"; all]);
    assert_eq!(run(&["migrate"]).trim(), "nothing applied");
    assert!(run(&["rollback"]).contains("reverted"));
    let mut newest_reverted = vec!["applied"; all - 1];
    newest_reverted.push("pending");
    assert_eq!(states(run(&["migrations"])), newest_reverted);
    assert_eq!(
        run(&["rollback", "--all", "--yes"]).lines().count(),
        all - 1
    );
    assert_eq!(states(run(&["migrations"])), vec!["pending"; all]);
    assert_eq!(run(&["rollback"]).trim(), "nothing reverted");
    assert_eq!(run(&["migrate"]).lines().count(), all);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 0);
}

#[test]
fn sqlite_migrate_rollback_all_and_migrate_again() {
    migrate_round_trip(&TestDb::sqlite_unmigrated());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn postgres_migrate_rollback_all_and_migrate_again() {
    migrate_round_trip(&TestDb::postgres_unmigrated());
}

/// `chatbot` serving on a free port in `folder`, with no other setting; its log lines
/// go to `stdout`.
fn serve_in(folder: &Path, stdout: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .current_dir(folder)
        .env_clear()
        .envs([("PORT", "0"), ("CHATBOT__AUTH__BCRYPT_COST", "4")])
        .stderr(Stdio::null())
        .stdout(stdout)
        .spawn()
        .unwrap()
}

#[test]
fn serve_creates_the_sqlite_database_with_no_set_up() {
    let folder = tempfile::tempdir().unwrap();
    let mut child = serve_in(folder.path(), Stdio::null());
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

#[test]
fn the_start_up_line_names_the_docs_the_profile_and_the_database() {
    use std::io::{BufRead, BufReader};
    let folder = tempfile::tempdir().unwrap();
    let mut child = serve_in(folder.path(), Stdio::piped());
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = lines
        .map_while(Result::ok)
        .take(50)
        .find(|line| line.contains("serving the chatbot API"));
    child.kill().unwrap();
    child.wait().unwrap();
    let serving = serving.expect("a start-up line");
    assert!(serving.contains("/api/docs"), "{serving}");
    assert!(serving.contains("profile=\"development\""), "{serving}");
    assert!(
        serving.contains("database=sqlite://data/chatbot.db"),
        "{serving}"
    );
    assert!(!serving.contains("Actix runtime"), "{serving}");
}
