//! Applying and reverting the embedded migrations, on both databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chatbot_persistence::Database;
use chatbot_persistence::testing::TestDb;

const MIGRATIONS: usize = 10;

fn applied(db: &Database) -> Vec<bool> {
    db.migration_status()
        .unwrap()
        .iter()
        .map(|m| m.applied)
        .collect()
}

fn round_trip(test: &TestDb) {
    let db = &test.db;
    assert_eq!(applied(db), [false; MIGRATIONS]);
    assert_eq!(
        db.revert_last_migration().unwrap(),
        None,
        "nothing to revert yet"
    );

    let names = db.run_pending_migrations().unwrap();
    assert_eq!(names.len(), MIGRATIONS);
    assert_eq!(applied(db), [true; MIGRATIONS]);
    assert!(
        db.run_pending_migrations().unwrap().is_empty(),
        "applying twice is a no-op"
    );
    test.execute(
        "INSERT INTO users (username, username_normalized, display_name, password_hash, \
         created_at) VALUES ('kept', 'kept', 'Kept', 'h', '2026-01-01 00:00:00')",
    );

    let last = db.revert_last_migration().unwrap().unwrap();
    assert!(
        names[MIGRATIONS - 1].starts_with(&last),
        "{last} is the newest of {names:?}"
    );
    let mut all_but_the_newest = [true; MIGRATIONS];
    all_but_the_newest[MIGRATIONS - 1] = false;
    assert_eq!(applied(db), all_but_the_newest);
    assert_eq!(db.run_pending_migrations().unwrap().len(), 1);
    assert_eq!(
        test.count("SELECT COUNT(*) AS n FROM users"),
        1,
        "older tables keep their rows"
    );

    assert_eq!(db.revert_all_migrations().unwrap().len(), MIGRATIONS);
    assert_eq!(applied(db), [false; MIGRATIONS]);
    assert_eq!(db.run_pending_migrations().unwrap().len(), MIGRATIONS);
    assert_eq!(applied(db), [true; MIGRATIONS]);
    assert_eq!(
        test.count("SELECT COUNT(*) AS n FROM users"),
        0,
        "a full revert drops the data"
    );
}

/// Accounts (`000008`) keep the users there were, named by their usernames, without
/// an address; the sessions there were end, their keys being stored in the clear.
fn accounts_upgrade(test: &TestDb) {
    let db = &test.db;
    db.run_pending_migrations().unwrap();
    revert_through(db, "_accounts");
    test.execute(
        "INSERT INTO users (username, password_hash, created_at) \
         VALUES ('Ada', 'h', '2026-01-01 00:00:00');
         INSERT INTO sessions (session_key, user_id, state, expires_at) \
         SELECT 'key in the clear', id, '{}', '2999-01-01 00:00:00' FROM users",
    );

    assert_eq!(db.run_pending_migrations().unwrap().len(), 3);
    assert_eq!(
        test.texts(
            "SELECT display_name AS t FROM users \
             WHERE email IS NULL AND email_normalized IS NULL AND NOT email_verified"
        ),
        ["Ada"]
    );
    assert_eq!(test.count("SELECT COUNT(*) AS n FROM sessions"), 0);
}

/// Reverts migrations, newest first, through the one whose name ends with `suffix`.
fn revert_through(db: &Database, suffix: &str) {
    loop {
        let reverted = db.revert_last_migration().unwrap().unwrap();
        if reverted.ends_with(suffix) {
            return;
        }
    }
}

/// `000009` gives the users there were their normalized username (ASCII lower case),
/// whatever the database's locale, and keeps them unique by it.
fn usernames_normalized_upgrade(test: &TestDb) {
    let db = &test.db;
    db.run_pending_migrations().unwrap();
    revert_through(db, "_username_normalized");
    test.execute(
        "INSERT INTO users (username, display_name, password_hash, created_at) \
         VALUES ('Ada.L', 'Ada', 'h', '2026-01-01 00:00:00'), \
                ('IRIS', 'Iris', 'h', '2026-01-01 00:00:00')",
    );

    assert_eq!(db.run_pending_migrations().unwrap().len(), 2);
    assert_eq!(
        test.texts("SELECT username_normalized AS t FROM users ORDER BY id"),
        ["ada.l", "iris"]
    );
}

/// `000010` moves each user's revision from their row to the counters of
/// `revisions` without letting it fall, and reverting moves it back.
fn revision_slots_upgrade(test: &TestDb) {
    let db = &test.db;
    db.run_pending_migrations().unwrap();
    revert_through(db, "_revision_slots");
    test.execute(
        "INSERT INTO users (username, username_normalized, display_name, password_hash, \
         created_at, revision) VALUES ('ada', 'ada', 'Ada', 'h', '2026-01-01 00:00:00', 41)",
    );
    let revision = || test.count("SELECT CAST(SUM(changes) AS BIGINT) AS n FROM revisions");

    assert_eq!(db.run_pending_migrations().unwrap().len(), 1);
    assert_eq!(revision(), 41);
    test.execute("UPDATE users SET display_name = 'Ada L.'");
    assert_eq!(revision(), 42, "a change after the upgrade raises it");

    revert_through(db, "_revision_slots");
    assert_eq!(test.count("SELECT revision AS n FROM users"), 42);
}

#[test]
fn sqlite_revisions_keep_rising_across_the_upgrade() {
    revision_slots_upgrade(&TestDb::sqlite_unmigrated());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn postgres_revisions_keep_rising_across_the_upgrade() {
    revision_slots_upgrade(&TestDb::postgres_unmigrated());
}

#[test]
fn sqlite_usernames_are_normalized_by_the_upgrade() {
    usernames_normalized_upgrade(&TestDb::sqlite_unmigrated());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn postgres_usernames_are_normalized_by_the_upgrade() {
    usernames_normalized_upgrade(&TestDb::postgres_unmigrated());
}

#[test]
fn sqlite_accounts_keep_users_and_end_sessions() {
    accounts_upgrade(&TestDb::sqlite_unmigrated());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn postgres_accounts_keep_users_and_end_sessions() {
    accounts_upgrade(&TestDb::postgres_unmigrated());
}

#[test]
fn sqlite_migrations_apply_revert_and_apply_again() {
    round_trip(&TestDb::sqlite_unmigrated());
}

#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn postgres_migrations_apply_revert_and_apply_again() {
    round_trip(&TestDb::postgres_unmigrated());
}

#[test]
fn status_names_the_migrations_in_order() {
    let test = TestDb::sqlite_unmigrated();
    let names: Vec<_> = test
        .db
        .migration_status()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        [
            "2026-11-25-000001_create_users_and_sessions",
            "2026-11-25-000002_create_conversations_and_messages",
            "2026-11-25-000003_order_messages_by_id",
            "2026-11-25-000004_add_user_revision",
            "2026-11-30-000005_raise_revision_in_triggers",
            "2026-11-30-000006_add_message_status",
            "2026-11-30-000007_stream_replies",
            "2026-12-01-000008_accounts",
            "2026-12-02-000009_username_normalized",
            "2026-12-03-000010_revision_slots",
        ]
    );
}

/// On a database whose locale let `alice` and `ALICE` both sign up (ICU `tr-TR`, where
/// `lower('I')` is `ı`), `000009` refuses to apply, naming the accounts to rename, and
/// applies once they are.
#[test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
fn postgres_usernames_clashing_under_a_turkish_locale_are_named_before_the_upgrade() {
    let test = TestDb::postgres_with_icu_locale("tr-TR");
    let db = &test.db;
    revert_through(db, "_username_normalized");
    test.execute(
        "INSERT INTO users (username, display_name, password_hash, created_at) \
         VALUES ('alice', 'a', 'h', '2026-01-01 00:00:00'), \
                ('ALICE', 'A', 'h', '2026-01-01 00:00:00')",
    );

    let refused = db.run_pending_migrations().unwrap_err().to_string();
    assert!(refused.contains("alice, ALICE"), "{refused}");
    assert_eq!(applied(db).last(), Some(&false));

    test.execute("UPDATE users SET username = 'alice2' WHERE username = 'ALICE'");
    assert_eq!(db.run_pending_migrations().unwrap().len(), 2);
}
