//! Accounts against real SQLite and PostgreSQL: profiles and addresses, sessions
//! found by the digests of their keys, and mailed tokens taken back once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chatbot_domain::ports::{
    ConversationRepository, MessageRepository, SessionRepository, TokenRepository, UserRepository,
};
use chatbot_domain::{
    AccountToken, ConversationName, DisplayName, Email, MessageStatus, NewAccountToken,
    NewConversation, NewMessage, NewSession, NewUser, PasswordHash, Profile, ProfileChange,
    SecretDigest, SecretToken, Sender, SessionChange, SessionId, SessionKey, SessionRecord,
    StorageError, Timestamp, TokenPurpose, User, UserId, Username,
};
use chatbot_persistence::on_both_backends;
use chatbot_persistence::testing::TestDb;

use TokenPurpose::{ResetPassword, VerifyEmail};

/// 2026-11-25T06:07:14.000Z plus `millis`.
fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_795_586_834_000 + millis).unwrap()
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

fn shown(raw: &str) -> DisplayName {
    DisplayName::parse(raw).unwrap()
}

/// A user `name`, shown as `name`, at `address` if any.
async fn user(db: &TestDb, name: &str, address: Option<&str>) -> User {
    db.db
        .insert_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: shown(name),
            email: address.map(email),
            password_hash: PasswordHash::new(format!("hash of {name}")),
            created_at: at(0),
        })
        .await
        .unwrap()
}

async fn profile(db: &TestDb, user: &User) -> Profile {
    db.db
        .find_profile(user.id)
        .await
        .unwrap()
        .expect("a stored user")
}

/// A profile change of the display name, the address, or both.
fn change(display_name: Option<&str>, address: Option<Option<&str>>) -> ProfileChange {
    ProfileChange {
        display_name: display_name.map(shown),
        email: address.map(|address| address.map(email)),
    }
}

/// The session of `key` for `user`, started at `started` and expiring at `expires`.
fn session(key: &str, user: Option<UserId>, started: i64, expires: i64) -> NewSession {
    NewSession {
        digest: digest(key),
        user,
        state: r#"{"user_id":"1"}"#.to_owned(),
        user_agent: Some("Mozilla/5.0 (test)".to_owned()),
        created_at: at(started),
        expires_at: at(expires),
    }
}

fn digest(key: &str) -> SecretDigest {
    SessionKey::new(key).digest()
}

/// Starts the session of `key` for `user` at `started`, expiring 10 s later.
async fn start(db: &TestDb, key: &str, user: &User, started: i64) -> SessionId {
    let session = session(key, Some(user.id), started, started + 10_000);
    db.db.insert_session(session).await.unwrap()
}

fn ids(records: &[SessionRecord]) -> Vec<SessionId> {
    records.iter().map(|record| record.id).collect()
}

/// The token `secret` of `user` for `purpose`, mailed to `address` at 0 and expiring
/// at `expires`.
fn token(
    secret: &str,
    user: &User,
    purpose: TokenPurpose,
    address: &str,
    expires: i64,
) -> NewAccountToken {
    NewAccountToken {
        digest: SecretToken::new(secret).digest(),
        user: user.id,
        purpose,
        email: email(address),
        created_at: at(0),
        expires_at: at(expires),
    }
}

async fn take(db: &TestDb, secret: &str, purpose: TokenPurpose) -> Option<AccountToken> {
    db.db
        .take_token(&SecretToken::new(secret).digest(), purpose)
        .await
        .unwrap()
}

/// `owner` has a conversation with an exchange in it.
async fn chat(db: &TestDb, owner: &User) {
    let conversation = db
        .db
        .insert_conversation(
            NewConversation {
                owner: owner.id,
                name: ConversationName::parse("c").unwrap(),
                created_at: at(0),
            },
            u32::MAX,
        )
        .await
        .unwrap()
        .expect("below the most conversations");
    let message = NewMessage {
        sender: Sender::User,
        text: "hello".to_owned(),
        status: MessageStatus::Complete,
        created_at: at(1),
    };
    db.db
        .begin_exchange(owner.id, conversation.id, message)
        .await
        .unwrap()
        .unwrap();
}

/// How many rows of `table` belong to `user`.
fn rows_of(db: &TestDb, table: &str, user: &User) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE user_id = {}",
        user.id
    ))
}

on_both_backends! {
    async fn a_new_profile_has_its_name_and_an_unverified_address_as_given(db: &TestDb) {
        let ada = user(db, "ada", Some("Ada@Example.com")).await;
        let bob = user(db, "bob", None).await;

        assert_eq!(
            profile(db, &ada).await,
            Profile {
                user: ada.clone(),
                display_name: shown("ada"),
                email: Some(email("Ada@Example.com")),
                email_verified: false,
            },
            "the address as typed, unverified"
        );
        let bobs = profile(db, &bob).await;
        assert_eq!((bobs.email, bobs.email_verified), (None, false));

        let credentials = db.db.find_credentials_of(ada.id).await.unwrap().unwrap();
        assert_eq!(credentials.user, ada);
        assert_eq!(credentials.password_hash.as_str(), "hash of ada");
        let missing = UserId::new(ada.id.get() + bob.id.get() + 1_000);
        assert_eq!(db.db.find_credentials_of(missing).await.unwrap(), None);
        assert_eq!(db.db.find_profile(missing).await.unwrap(), None);
    }

    async fn an_address_belongs_to_one_account_whatever_its_letter_case(db: &TestDb) {
        let ada = user(db, "ada", Some("Ada@X.com")).await;
        let bob = user(db, "bob", None).await;

        let twin = db.db.insert_user(NewUser {
            username: Username::parse("ada2").unwrap(),
            display_name: shown("Ada's twin"),
            email: Some(email("ada@x.com")),
            password_hash: PasswordHash::new("h"),
            created_at: at(0),
        }).await;
        assert!(matches!(twin, Err(StorageError::Conflict)), "{twin:?}");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM users"), 2);

        let found = db.db.find_profile_by_email(&email("ADA@x.COM")).await.unwrap();
        assert_eq!(found, Some(profile(db, &ada).await));
        assert_eq!(db.db.find_profile_by_email(&email("eve@x.com")).await.unwrap(), None);

        let before = profile(db, &bob).await;
        let taken = db.db.update_profile(bob.id, change(Some("Bobby"), Some(Some("aDa@x.com")))).await;
        assert!(matches!(taken, Err(StorageError::Conflict)), "{taken:?}");
        assert_eq!(profile(db, &bob).await, before, "not even the name changed");
    }

    async fn a_profile_changes_what_the_change_names(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        assert!(db.db.mark_email_verified(ada.id, &email("ada@x.com")).await.unwrap());

        let renamed = db.db.update_profile(ada.id, change(Some("Ada Lovelace"), None)).await.unwrap();
        let expected = Profile { display_name: shown("Ada Lovelace"), ..profile(db, &ada).await };
        assert_eq!(renamed, Some(expected.clone()));
        assert!(expected.email_verified, "the address and its verification stay");

        let unchanged = db.db.update_profile(ada.id, ProfileChange::default()).await.unwrap();
        assert_eq!(unchanged, Some(expected));

        let moved = db.db.update_profile(ada.id, change(None, Some(Some("Lovelace@Y.org")))).await.unwrap().unwrap();
        assert_eq!((moved.email, moved.email_verified), (Some(email("Lovelace@Y.org")), false));
        assert_eq!(moved.display_name, shown("Ada Lovelace"));
        assert_eq!(db.db.find_profile_by_email(&email("ada@x.com")).await.unwrap(), None);
        let found = db.db.find_profile_by_email(&email("lovelace@y.org")).await.unwrap();
        assert_eq!(found.map(|found| found.user), Some(ada.clone()));
    }

    async fn clearing_an_address_frees_it_and_clears_its_verification(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        assert!(db.db.mark_email_verified(ada.id, &email("ada@x.com")).await.unwrap());

        let cleared = db.db.update_profile(ada.id, change(None, Some(None))).await.unwrap().unwrap();
        assert_eq!((cleared.email, cleared.email_verified), (None, false));
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) AS n FROM users WHERE id = {} AND email_normalized IS NULL", ada.id)),
            1
        );
        assert_eq!(db.db.find_profile_by_email(&email("ada@x.com")).await.unwrap(), None);
        user(db, "bob", Some("ADA@x.com")).await;
    }

    async fn a_missing_user_has_no_profile_to_change(db: &TestDb) {
        let missing = UserId::new(424_242);
        for change in [change(Some("Nobody"), Some(Some("no@x.com"))), ProfileChange::default()] {
            assert_eq!(db.db.update_profile(missing, change).await.unwrap(), None);
        }
        assert!(!db.db.set_password(missing, PasswordHash::new("h")).await.unwrap());
        assert!(!db.db.mark_email_verified(missing, &email("no@x.com")).await.unwrap());
        assert!(!db.db.delete_user(missing).await.unwrap());
    }

    async fn an_address_is_verified_only_while_the_account_has_it(db: &TestDb) {
        let ada = user(db, "ada", Some("Ada@X.com")).await;
        let bob = user(db, "bob", None).await;
        assert!(!db.db.mark_email_verified(bob.id, &email("bob@x.com")).await.unwrap(), "no address");
        assert!(!db.db.mark_email_verified(ada.id, &email("eve@x.com")).await.unwrap(), "another address");
        assert!(!profile(db, &ada).await.email_verified);

        assert!(db.db.mark_email_verified(ada.id, &email("ada@x.COM")).await.unwrap(), "letter case aside");
        assert!(profile(db, &ada).await.email_verified);

        db.db.update_profile(ada.id, change(None, Some(Some("new@x.com")))).await.unwrap();
        assert!(!db.db.mark_email_verified(ada.id, &email("Ada@X.com")).await.unwrap(), "changed since");
        assert!(!profile(db, &ada).await.email_verified);
    }

    async fn a_new_password_replaces_the_hash(db: &TestDb) {
        let ada = user(db, "ada", None).await;
        assert!(db.db.set_password(ada.id, PasswordHash::new("new hash")).await.unwrap());
        let credentials = db.db.find_credentials(&Username::parse("ADA").unwrap()).await.unwrap().unwrap();
        assert_eq!(credentials.password_hash.as_str(), "new hash");
    }

    async fn deleting_a_user_deletes_everything_of_theirs(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        let bob = user(db, "bob", Some("bob@x.com")).await;
        for (owner, address) in [(&ada, "ada@x.com"), (&bob, "bob@x.com")] {
            chat(db, owner).await;
            start(db, address, owner, 0).await;
            db.db.issue_token(token(address, owner, VerifyEmail, address, 1_000)).await.unwrap();
        }

        assert!(db.db.delete_user(ada.id).await.unwrap());

        assert_eq!(db.db.find_profile(ada.id).await.unwrap(), None);
        for table in ["conversations", "sessions", "account_tokens"] {
            assert_eq!(rows_of(db, table, &ada), 0, "{table} of ada");
            assert_eq!(rows_of(db, table, &bob), 1, "{table} of bob stay");
        }
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM messages"), 2, "bob's exchange stays");
        assert!(!db.db.delete_user(ada.id).await.unwrap(), "gone for good");
        user(db, "ada", Some("ada@x.com")).await;
    }

    async fn sessions_are_found_by_their_digest_until_they_expire(db: &TestDb) {
        let ada = user(db, "ada", None).await;
        let key = digest("opaque-key");
        let id = db.db.insert_session(session("opaque-key", None, 0, 1_000)).await.unwrap();
        let duplicate = db.db.insert_session(session("opaque-key", None, 5, 1_000)).await;
        assert!(matches!(duplicate, Err(StorageError::Conflict)), "{duplicate:?}");

        let loaded = db.db.load_session(&key, at(999)).await.unwrap();
        assert_eq!(loaded, Some(SessionRecord {
            id,
            user: None,
            state: r#"{"user_id":"1"}"#.to_owned(),
            user_agent: Some("Mozilla/5.0 (test)".to_owned()),
            created_at: at(0),
            last_seen_at: at(0),
            expires_at: at(1_000),
        }));
        assert_eq!(db.db.load_session(&key, at(1_000)).await.unwrap(), None, "expired at its deadline");
        assert_eq!(db.db.load_session(&digest("other"), at(0)).await.unwrap(), None);

        let logged_in = SessionChange { user: Some(ada.id), state: "{}".to_owned(), seen_at: at(900), expires_at: at(5_000) };
        assert!(db.db.update_session(&key, logged_in).await.unwrap());
        let loaded = db.db.load_session(&key, at(1_000)).await.unwrap().unwrap();
        assert_eq!(
            (loaded.id, loaded.user, loaded.state.as_str(), loaded.created_at, loaded.last_seen_at, loaded.expires_at),
            (id, Some(ada.id), "{}", at(0), at(900), at(5_000))
        );

        assert!(db.db.touch_session(&key, at(4_000), at(9_000)).await.unwrap());
        let touched = db.db.load_session(&key, at(8_999)).await.unwrap().unwrap();
        assert_eq!((touched.last_seen_at, touched.expires_at), (at(4_000), at(9_000)));
        assert_eq!((touched.user, touched.state), (Some(ada.id), "{}".to_owned()));

        let unknown = digest("unknown");
        let anything = SessionChange { user: None, state: "{}".to_owned(), seen_at: at(1), expires_at: at(2) };
        assert!(!db.db.update_session(&unknown, anything).await.unwrap());
        assert!(!db.db.touch_session(&unknown, at(1), at(2)).await.unwrap());
    }

    async fn deleting_a_session_says_whose_it_was(db: &TestDb) {
        let ada = user(db, "ada", None).await;
        start(db, "ada's key", &ada, 0).await;
        db.db.insert_session(session("anonymous", None, 0, 1_000)).await.unwrap();

        assert_eq!(db.db.delete_session(&digest("ada's key")).await.unwrap(), Some(ada.id));
        assert_eq!(db.db.load_session(&digest("ada's key"), at(0)).await.unwrap(), None);
        assert_eq!(db.db.delete_session(&digest("ada's key")).await.unwrap(), None, "already gone");
        assert_eq!(db.db.delete_session(&digest("anonymous")).await.unwrap(), None, "no one's");
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM sessions"), 0);
    }

    async fn purging_removes_only_expired_sessions(db: &TestDb) {
        for (key, expires) in [("a", 100), ("b", 200), ("c", 300)] {
            db.db.insert_session(session(key, None, 0, expires)).await.unwrap();
        }
        assert_eq!(db.db.purge_expired_sessions(at(200)).await.unwrap(), 2);
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM sessions"), 1);
        assert!(db.db.load_session(&digest("c"), at(200)).await.unwrap().is_some());
        assert_eq!(db.db.purge_expired_sessions(at(200)).await.unwrap(), 0);
    }

    async fn a_users_sessions_list_the_latest_used_first(db: &TestDb) {
        let ada = user(db, "ada", None).await;
        let bob = user(db, "bob", None).await;
        let first = start(db, "first", &ada, 0).await;
        let second = start(db, "second", &ada, 0).await;
        let third = start(db, "third", &ada, 0).await;
        let expired = db.db.insert_session(session("expired", Some(ada.id), 0, 50)).await.unwrap();
        start(db, "bob's", &bob, 0).await;
        db.db.insert_session(session("anonymous", None, 0, 10_000)).await.unwrap();

        let listed = db.db.list_sessions(ada.id, at(100)).await.unwrap();
        assert_eq!(ids(&listed), [third, second, first], "used at the same time: the newest first");
        assert!(!ids(&listed).contains(&expired));

        assert!(db.db.touch_session(&digest("first"), at(500), at(20_000)).await.unwrap());
        assert!(db.db.touch_session(&digest("third"), at(300), at(20_000)).await.unwrap());
        let listed = db.db.list_sessions(ada.id, at(600)).await.unwrap();
        assert_eq!(ids(&listed), [first, third, second]);
        assert_eq!(listed[0].last_seen_at, at(500));
        assert_eq!(listed[0].user_agent.as_deref(), Some("Mozilla/5.0 (test)"));
        assert!(db.db.list_sessions(ada.id, at(20_000)).await.unwrap().is_empty(), "all expired");
    }

    async fn a_user_ends_only_their_own_sessions(db: &TestDb) {
        let ada = user(db, "ada", None).await;
        let bob = user(db, "bob", None).await;
        let adas = start(db, "ada's", &ada, 0).await;
        let bobs = start(db, "bob's", &bob, 0).await;

        assert!(!db.db.delete_user_session(ada.id, bobs).await.unwrap(), "bob's is not ada's");
        assert!(db.db.load_session(&digest("bob's"), at(0)).await.unwrap().is_some());
        assert!(db.db.delete_user_session(ada.id, adas).await.unwrap());
        assert_eq!(db.db.load_session(&digest("ada's"), at(0)).await.unwrap(), None);
        assert!(!db.db.delete_user_session(ada.id, adas).await.unwrap(), "already ended");
    }

    async fn ending_the_other_sessions_keeps_one_or_none(db: &TestDb) {
        let ada = user(db, "ada", None).await;
        let bob = user(db, "bob", None).await;
        let current = start(db, "current", &ada, 0).await;
        for key in ["phone", "laptop", "tablet"] {
            start(db, key, &ada, 0).await;
        }
        let bobs = start(db, "bob's", &bob, 0).await;

        assert_eq!(db.db.delete_other_sessions(ada.id, Some(current)).await.unwrap(), 3);
        assert_eq!(ids(&db.db.list_sessions(ada.id, at(0)).await.unwrap()), [current]);
        assert_eq!(db.db.delete_other_sessions(ada.id, Some(bobs)).await.unwrap(), 1, "bob's is not ada's to keep");
        assert_eq!(db.db.delete_other_sessions(ada.id, None).await.unwrap(), 0);

        start(db, "again", &ada, 0).await;
        start(db, "and again", &ada, 0).await;
        assert_eq!(db.db.delete_other_sessions(ada.id, None).await.unwrap(), 2);
        assert_eq!(ids(&db.db.list_sessions(bob.id, at(0)).await.unwrap()), [bobs], "bob's stays");
    }

    async fn a_token_is_taken_once(db: &TestDb) {
        let ada = user(db, "ada", Some("Ada@X.com")).await;
        db.db.issue_token(token("t0ken", &ada, VerifyEmail, "Ada@X.com", 1_000)).await.unwrap();

        assert_eq!(take(db, "t0ken", ResetPassword).await, None, "not for that purpose");
        assert_eq!(take(db, "T0KEN", VerifyEmail).await, None, "not that token");
        let taken = take(db, "t0ken", VerifyEmail).await;
        assert_eq!(taken, Some(AccountToken {
            user: ada.id,
            purpose: VerifyEmail,
            email: email("Ada@X.com"),
            expires_at: at(1_000),
        }));
        assert_eq!(take(db, "t0ken", VerifyEmail).await, None, "used");
    }

    async fn an_expired_token_is_still_taken_for_the_caller_to_refuse(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        db.db.issue_token(token("old", &ada, ResetPassword, "ada@x.com", -1)).await.unwrap();
        assert_eq!(take(db, "old", ResetPassword).await.map(|t| t.expires_at), Some(at(-1)));
    }

    async fn concurrent_takes_get_a_token_once(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        db.db.issue_token(token("contested", &ada, ResetPassword, "ada@x.com", 1_000)).await.unwrap();
        let takes = (0..8).map(|_| {
            let database = db.db.clone();
            let digest = SecretToken::new("contested").digest();
            tokio::spawn(async move { database.take_token(&digest, ResetPassword).await })
        });
        let mut taken = 0;
        for take in takes.collect::<Vec<_>>() {
            taken += usize::from(take.await.unwrap().unwrap().is_some());
        }
        assert_eq!(taken, 1);
    }

    async fn a_new_token_voids_the_older_of_its_purpose_only(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        let bob = user(db, "bob", Some("bob@x.com")).await;
        db.db.issue_token(token("verify 1", &ada, VerifyEmail, "ada@x.com", 1_000)).await.unwrap();
        db.db.issue_token(token("reset", &ada, ResetPassword, "ada@x.com", 1_000)).await.unwrap();
        db.db.issue_token(token("bob's", &bob, VerifyEmail, "bob@x.com", 1_000)).await.unwrap();
        db.db.issue_token(token("verify 2", &ada, VerifyEmail, "ada@x.com", 1_000)).await.unwrap();

        assert_eq!(take(db, "verify 1", VerifyEmail).await, None, "voided");
        assert!(take(db, "verify 2", VerifyEmail).await.is_some());
        assert!(take(db, "reset", ResetPassword).await.is_some(), "another purpose");
        assert!(take(db, "bob's", VerifyEmail).await.is_some(), "another user");
    }

    async fn tokens_issued_at_the_same_time_leave_one(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        let issues = (0..8).map(|i| {
            let database = db.db.clone();
            let new = token(&format!("token {i}"), &ada, ResetPassword, "ada@x.com", 1_000);
            tokio::spawn(async move { database.issue_token(new).await })
        });
        for issue in issues.collect::<Vec<_>>() {
            issue.await.unwrap().unwrap();
        }
        assert_eq!(rows_of(db, "account_tokens", &ada), 1);
    }

    async fn a_token_whose_digest_exists_changes_nothing(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        let bob = user(db, "bob", Some("bob@x.com")).await;
        db.db.issue_token(token("same", &ada, VerifyEmail, "ada@x.com", 1_000)).await.unwrap();
        db.db.issue_token(token("bob's", &bob, VerifyEmail, "bob@x.com", 1_000)).await.unwrap();

        let clash = db.db.issue_token(token("same", &bob, VerifyEmail, "bob@x.com", 1_000)).await;
        assert!(matches!(clash, Err(StorageError::Conflict)), "{clash:?}");
        assert_eq!(take(db, "bob's", VerifyEmail).await.map(|t| t.user), Some(bob.id), "bob's older one stays");
        assert_eq!(take(db, "same", VerifyEmail).await.map(|t| t.user), Some(ada.id));
    }

    async fn purging_removes_only_expired_tokens(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        let bob = user(db, "bob", Some("bob@x.com")).await;
        db.db.issue_token(token("a", &ada, VerifyEmail, "ada@x.com", 100)).await.unwrap();
        db.db.issue_token(token("b", &ada, ResetPassword, "ada@x.com", 200)).await.unwrap();
        db.db.issue_token(token("c", &bob, ResetPassword, "bob@x.com", 300)).await.unwrap();

        assert_eq!(db.db.purge_expired_tokens(at(200)).await.unwrap(), 2);
        assert_eq!(db.db.purge_expired_tokens(at(200)).await.unwrap(), 0);
        assert!(take(db, "c", ResetPassword).await.is_some());
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM account_tokens"), 0);
    }

    async fn only_digests_of_keys_and_tokens_are_stored(db: &TestDb) {
        let ada = user(db, "ada", Some("ada@x.com")).await;
        let key = "the-session-key-in-the-cookie";
        let secret = "the-token-in-the-mail";
        start(db, key, &ada, 0).await;
        db.db.issue_token(token(secret, &ada, ResetPassword, "ada@x.com", 1_000)).await.unwrap();

        let stored = db.texts(
            "SELECT key_digest AS t FROM sessions \
             UNION ALL SELECT state FROM sessions \
             UNION ALL SELECT user_agent FROM sessions \
             UNION ALL SELECT digest FROM account_tokens \
             UNION ALL SELECT purpose FROM account_tokens \
             UNION ALL SELECT email FROM account_tokens",
        );
        assert_eq!(stored.len(), 6);
        for value in &stored {
            assert!(!value.contains(key) && !value.contains(secret), "{value:?} holds a secret");
        }
        assert_eq!(db.texts("SELECT key_digest AS t FROM sessions"), [SessionKey::new(key).digest().as_str()]);
        assert_eq!(db.texts("SELECT digest AS t FROM account_tokens"), [SecretToken::new(secret).digest().as_str()]);
    }
}
