//! Accounts (SPEC §11): the profile, the password, sessions you can see and end,
//! leaving, and the mailed links, through files and through a real SMTP server.

use std::path::Path;
use std::time::Duration;

use awc::http::Method;
use chatbot_domain::{ManualClock, SecretDigest, Timestamp};
use chatbot_mail::testing::{ReceivedMail, SmtpSink, free_port};
use serde_json::json;

use crate::support::{Client, Reply, Server, api_tests, settings};

const PASSWORD: &str = "correct horse";

/// Signs `name` up with `email` and logs in.
async fn sign_up_with_email(client: &mut Client, name: &str, email: &str) {
    let signup = json!({"username": name, "password": PASSWORD, "email": email});
    let reply = client.post("/api/signup", signup).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    log_in(client, name, PASSWORD).await;
}

async fn log_in(client: &mut Client, name: &str, password: &str) -> Reply {
    client.cookie = None;
    client
        .post(
            "/api/login",
            json!({"username": name, "password": password}),
        )
        .await
}

/// The session key a cookie carries: the signed cookie's value ends with it.
fn key_of(cookie: &str) -> &str {
    let value = cookie.split_once('=').unwrap().1;
    &value[value.len() - 64..]
}

/// The mails written under `dir`, once there are `count` of them (10 s at most).
async fn mail_in(dir: &Path, count: usize) -> Vec<ReceivedMail> {
    for _ in 0..200 {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|path| path.extension().is_some_and(|e| e == "eml"));
        if files.len() >= count {
            files.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
            return files
                .iter()
                .map(|path| ReceivedMail::parse(&std::fs::read_to_string(path).unwrap()))
                .collect();
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} mails in {}", dir.display());
}

/// The mail written under `dir` after those in `seen` (10 s at most), added to them:
/// files written within one tick of the clock cannot be told apart by time.
async fn next_mail(dir: &Path, seen: &mut Vec<ReceivedMail>) -> ReceivedMail {
    let mails = mail_in(dir, seen.len() + 1).await;
    let new = mails
        .into_iter()
        .find(|mail| !seen.contains(mail))
        .expect("a mail not seen before");
    seen.push(new.clone());
    new
}

/// What `sink` received, once it is `count` mails (`within` at most).
async fn mail_from(sink: &SmtpSink, count: usize, within: Duration) -> Vec<ReceivedMail> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let received = sink.received();
        if received.len() >= count {
            return received
                .iter()
                .map(|raw| ReceivedMail::parse(raw))
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the SMTP server received {} of {count} mails",
            received.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token_in(mail: &ReceivedMail, page: &str) -> String {
    mail.token(page)
        .unwrap_or_else(|| panic!("no {page} link in {mail:?}"))
}

/// Settings that write mail as files into `dir`.
fn mailing_to(db: &chatbot_persistence::testing::TestDb, dir: &Path) -> chatbot_server::Settings {
    settings(db, &[("CHATBOT__MAIL__FILE_DIR", dir.to_str().unwrap())])
}

/// Settings that send mail to the SMTP server at `url`, retrying every 100 ms.
fn mailing_by_smtp(
    db: &chatbot_persistence::testing::TestDb,
    url: &str,
) -> chatbot_server::Settings {
    settings(
        db,
        &[
            ("CHATBOT__MAIL__TRANSPORT", "smtp"),
            ("CHATBOT__MAIL__SMTP_URL", url),
            ("CHATBOT__MAIL__RETRY_FIRST_MS", "100"),
            ("CHATBOT__MAIL__RETRY_MAX_MS", "200"),
            ("CHATBOT__APP__PUBLIC_URL", "https://chat.example.com"),
        ],
    )
}

api_tests! {
    async fn the_profile_shows_and_changes_with_every_rule_checked(db) {
        let mail = tempfile::tempdir().unwrap();
        let server = Server::start(mailing_to(&db, mail.path())).await;
        let mut alice = server.client();
        sign_up_with_email(&mut alice, "Alice", "Alice@Example.com").await;
        let mut bob = server.client();
        sign_up_with_email(&mut bob, "bob", "bob@example.com").await;

        let me = alice.get("/api/me").await;
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(me.body["username"], "Alice");
        assert_eq!(me.body["display_name"], "Alice", "a new account shows its username");
        assert_eq!(me.body["email"], "Alice@Example.com");
        assert_eq!(me.body["email_verified"], false);
        assert!(me.body["id"].as_i64().unwrap() > 0);
        assert!(me.body["created_at"].as_str().unwrap().ends_with('Z'));

        let renamed = alice.patch("/api/me", json!({"display_name": "  Alice L.  "})).await;
        assert_eq!(renamed.status, 200, "{renamed:?}");
        assert_eq!(renamed.body["display_name"], "Alice L.");
        assert_eq!(renamed.body["email"], "Alice@Example.com", "a field left out stays");

        for (body, field) in [
            (json!({"display_name": "   "}), "display_name"),
            (json!({"display_name": "x".repeat(65)}), "display_name"),
            (json!({"display_name": "a\u{7}b"}), "display_name"),
            (json!({"email": "not an address"}), "email"),
            (json!({"email": "a@b@c"}), "email"),
        ] {
            let refused = alice.patch("/api/me", body.clone()).await;
            refused.assert_error(400, "validation_failed");
            assert!(refused.body["error"].as_str().unwrap().to_lowercase().contains(field), "{body}: {refused:?}");
        }
        let taken = alice.patch("/api/me", json!({"display_name": "New", "email": "BOB@example.COM"})).await;
        taken.assert_error(409, "conflict");
        let unchanged = alice.get("/api/me").await;
        assert_eq!(unchanged.body, renamed.body, "a refused change changes nothing");
        alice.patch("/api/me", json!({"unknown": 1})).await.assert_error(400, "bad_request");

        // The same address in other letter case is no change; a new one is unverified
        // and mailed a link; null removes it.
        let same = alice.patch("/api/me", json!({"email": "alice@example.com"})).await;
        assert_eq!(same.body["email"], "Alice@Example.com");
        let moved = alice.patch("/api/me", json!({"email": "alice@new.example"})).await;
        assert_eq!((moved.status.as_u16(), &moved.body["email"]), (200, &json!("alice@new.example")));
        let mails = mail_in(mail.path(), 3).await;
        assert_eq!(mails.iter().filter(|m| m.to == "alice@new.example").count(), 1);
        let removed = alice.patch("/api/me", json!({"email": null})).await;
        assert_eq!((&removed.body["email"], &removed.body["email_verified"]), (&json!(null), &json!(false)));
        alice.post("/api/me/email/verify", json!({})).await.assert_error(400, "validation_failed");

        server.client().get("/api/me").await.assert_error(401, "unauthorized");
        server.stop().await;
    }

    async fn signup_checks_the_email_and_refuses_one_taken_in_any_case(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut client = server.client();
        let first = json!({"username": "ada", "password": PASSWORD, "email": "ada@example.com"});
        assert_eq!(client.post("/api/signup", first).await.status, 201);
        let taken = json!({"username": "other", "password": PASSWORD, "email": "ADA@EXAMPLE.COM"});
        let reply = client.post("/api/signup", taken).await;
        reply.assert_error(409, "conflict");
        assert!(reply.body["error"].as_str().unwrap().contains("email"), "{reply:?}");
        let bad = json!({"username": "other", "password": PASSWORD, "email": "nope"});
        client.post("/api/signup", bad).await.assert_error(400, "validation_failed");
        assert_eq!(db.count("SELECT count(*) AS n FROM users"), 1, "nothing stored");
        // Without an email, as the seed signs up.
        let plain = json!({"username": "other", "password": PASSWORD});
        assert_eq!(client.post("/api/signup", plain).await.status, 201);
        server.stop().await;
    }

    async fn a_new_password_ends_the_other_sessions_and_gives_this_one_a_new_key(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut laptop = server.client();
        laptop.sign_up_and_log_in("alice").await;
        let mut phone = server.client();
        assert_eq!(log_in(&mut phone, "alice", PASSWORD).await.status, 200);
        let old_cookie = laptop.cookie.clone().unwrap();

        let wrong = laptop
            .post("/api/me/password", json!({"current_password": "guess", "new_password": "a new password"}))
            .await;
        wrong.assert_error(400, "validation_failed");
        let short = laptop
            .post("/api/me/password", json!({"current_password": PASSWORD, "new_password": "short"}))
            .await;
        short.assert_error(400, "validation_failed");
        assert!(short.body["error"].as_str().unwrap().starts_with("New_password"), "{short:?}");
        assert_eq!(phone.get("/api/me").await.status, 200, "a refused change ends nothing");

        let changed = laptop
            .post("/api/me/password", json!({"current_password": PASSWORD, "new_password": "a new password"}))
            .await;
        assert_eq!(changed.status, 200, "{changed:?}");
        assert_eq!(changed.body, json!({"message": "Password changed"}));
        let new_cookie = laptop.cookie.clone().unwrap();
        assert_ne!(key_of(&new_cookie), key_of(&old_cookie), "the session key is rotated");
        assert_eq!(laptop.get("/api/me").await.status, 200, "this session goes on");
        phone.get("/api/me").await.assert_error(401, "unauthorized");
        let mut stolen = server.client();
        stolen.cookie = Some(old_cookie);
        stolen.get("/api/me").await.assert_error(401, "unauthorized");

        assert_eq!(log_in(&mut phone, "alice", PASSWORD).await.status, 401);
        assert_eq!(log_in(&mut phone, "alice", "a new password").await.status, 200);
        server.stop().await;
    }

    async fn the_session_list_reflects_reality_and_revocation_takes_effect_at_once(db) {
        // Two instances on one database: a session ended on one is over on the other.
        let a = Server::start(settings(&db, &[])).await;
        let b = Server::start(settings(&db, &[])).await;
        let mut laptop = a.client();
        laptop.sign_up_and_log_in("alice").await;
        let mut phone = b.client();
        phone.cookie = None;
        let login = json!({"username": "alice", "password": PASSWORD});
        let reply = phone
            .send(awc::http::Method::POST, "/api/login", Some(login.to_string()), &[("user-agent", "Phone/1.0")])
            .await;
        assert_eq!(reply.status, 200);
        let mut tablet = a.client();
        assert_eq!(log_in(&mut tablet, "alice", PASSWORD).await.status, 200);
        let mut mallory = a.client();
        mallory.sign_up_and_log_in("mallory").await;

        let listed = laptop.get("/api/me/sessions").await;
        assert_eq!(listed.status, 200, "{listed:?}");
        let sessions = listed.body.as_array().unwrap();
        assert_eq!(sessions.len(), 3, "{listed:?}");
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
        let phone_session = sessions.iter().find(|s| s["user_agent"] == "Phone/1.0").expect("the phone's");
        assert_eq!(phone_session["current"], false);
        for session in sessions {
            assert!(session["id"].as_i64().unwrap() > 0);
            assert!(session["created_at"].as_str().unwrap().ends_with('Z'));
            assert!(session["last_seen_at"].as_str().unwrap().ends_with('Z'));
            let handle = session["id"].to_string();
            assert!(!key_of(laptop.cookie.as_ref().unwrap()).contains(&handle) || handle.len() < 3);
        }
        let phone_id = phone_session["id"].as_i64().unwrap();

        // Another user's session, and one that does not exist, are not found.
        mallory.delete(&format!("/api/me/sessions/{phone_id}")).await.assert_error(404, "not_found");
        laptop.delete("/api/me/sessions/999999").await.assert_error(404, "not_found");
        laptop.delete("/api/me/sessions/nope").await.assert_error(404, "not_found");
        assert_eq!(phone.get("/api/me").await.status, 200);

        let ended = laptop.delete(&format!("/api/me/sessions/{phone_id}")).await;
        assert_eq!(ended.status, 204, "{ended:?}");
        phone.get("/api/me").await.assert_error(401, "unauthorized");
        assert_eq!(laptop.get("/api/me/sessions").await.body.as_array().unwrap().len(), 2);

        let others = b.client();
        drop(others);
        let mut laptop_on_b = b.client();
        laptop_on_b.cookie = laptop.cookie.clone();
        assert_eq!(laptop_on_b.delete("/api/me/sessions").await.status, 204);
        tablet.get("/api/me").await.assert_error(401, "unauthorized");
        let left = laptop.get("/api/me/sessions").await;
        assert_eq!(left.body.as_array().unwrap().len(), 1);
        assert_eq!(left.body[0]["current"], true);
        assert_eq!(mallory.get("/api/me").await.status, 200, "other users keep theirs");
        a.stop().await;
        b.stop().await;
    }

    async fn deleting_the_account_takes_everything_and_its_cookies_get_401(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let mut phone = server.client();
        assert_eq!(log_in(&mut phone, "alice", PASSWORD).await.status, 200);
        let id = alice.create_conversation("mine").await;
        let sent = alice.post(&format!("/api/conversations/{id}/messages"), json!({"text": "hi"})).await;
        assert_eq!(sent.status, 201);
        let mut bob = server.client();
        bob.sign_up_and_log_in("bob").await;
        bob.create_conversation("bob's").await;

        alice.delete_with("/api/me", json!({"password": "guess"})).await.assert_error(400, "validation_failed");
        assert_eq!(db.count("SELECT count(*) AS n FROM conversations"), 2, "a refused deletion deletes nothing");

        let cookie = alice.cookie.clone();
        let deleted = alice.delete_with("/api/me", json!({"password": PASSWORD})).await;
        assert_eq!(deleted.status, 204, "{deleted:?}");
        assert_eq!(alice.cookie, None, "the cookie is cleared");
        alice.cookie = cookie;
        alice.get("/api/me").await.assert_error(401, "unauthorized");
        phone.get("/api/conversations").await.assert_error(401, "unauthorized");
        assert_eq!(log_in(&mut phone, "alice", PASSWORD).await.status, 401);
        assert_eq!(db.count("SELECT count(*) AS n FROM users"), 1);
        assert_eq!(db.count("SELECT count(*) AS n FROM conversations"), 1);
        assert_eq!(db.count("SELECT count(*) AS n FROM messages"), 0);
        assert_eq!(bob.get("/api/conversations").await.body.as_array().unwrap().len(), 1);
        // The name is free again.
        server.client().sign_up_and_log_in("alice").await;
        server.stop().await;
    }

    async fn the_verification_link_works_once_and_is_written_as_a_mail_file(db) {
        let mail = tempfile::tempdir().unwrap();
        let server = Server::start(mailing_to(&db, mail.path())).await;
        let mut alice = server.client();
        sign_up_with_email(&mut alice, "alice", "alice@example.com").await;

        let mut seen = Vec::new();
        let first = next_mail(mail.path(), &mut seen).await;
        let mails = [first];
        let link = mails[0].link("/verify").unwrap();
        assert!(link.starts_with("http://localhost:5000/verify?token="), "{link}");
        assert_eq!(mails[0].to, "alice@example.com");
        assert!(mails[0].html.as_deref().unwrap().contains("/verify?token="));
        let token = token_in(&mails[0], "/verify");

        let anyone = &mut server.client();
        anyone.post("/api/email/verify", json!({"token": "not a token"})).await.assert_error(400, "invalid_token");
        let verified = anyone.post("/api/email/verify", json!({"token": token})).await;
        assert_eq!(verified.status, 200, "{verified:?}");
        assert_eq!(alice.get("/api/me").await.body["email_verified"], true);
        anyone.post("/api/email/verify", json!({"token": token})).await.assert_error(400, "invalid_token");
        alice.post("/api/me/email/verify", json!({})).await.assert_error(400, "validation_failed");

        // A new link voids the older one.
        let moved = alice.patch("/api/me", json!({"email": "alice@new.example"})).await;
        assert_eq!(moved.body["email_verified"], false);
        let older = token_in(&next_mail(mail.path(), &mut seen).await, "/verify");
        let again = alice.post("/api/me/email/verify", json!({})).await;
        assert_eq!(again.status, 202, "{again:?}");
        let newer = token_in(&next_mail(mail.path(), &mut seen).await, "/verify");
        anyone.post("/api/email/verify", json!({"token": older})).await.assert_error(400, "invalid_token");
        assert_eq!(anyone.post("/api/email/verify", json!({"token": newer})).await.status, 200);
        assert_eq!(alice.get("/api/me").await.body["email_verified"], true);
        server.stop().await;
    }

    async fn tokens_and_session_keys_are_stored_only_as_digests(db) {
        let mail = tempfile::tempdir().unwrap();
        let server = Server::start(mailing_to(&db, mail.path())).await;
        let mut alice = server.client();
        sign_up_with_email(&mut alice, "alice", "alice@example.com").await;
        let forgot = server.client().post("/api/password/forgot", json!({"email": "alice@example.com"})).await;
        assert_eq!(forgot.status, 202);
        let mails = mail_in(mail.path(), 2).await;
        let key = key_of(alice.cookie.as_ref().unwrap()).to_owned();
        let of = |page| mails.iter().find_map(|mail| mail.token(page)).unwrap();
        let secrets = [key.clone(), of("/verify"), of("/reset")];

        let stored: Vec<String> = [
            "SELECT key_digest AS t FROM sessions",
            "SELECT state AS t FROM sessions",
            "SELECT digest AS t FROM account_tokens",
            "SELECT email AS t FROM account_tokens",
        ]
        .iter()
        .flat_map(|sql| db.texts(sql))
        .collect();
        assert!(stored.len() >= 5, "{stored:?}");
        for secret in &secrets {
            assert!(!stored.iter().any(|value| value.contains(secret.as_str())), "{secret} is stored in clear");
        }
        assert!(db.texts("SELECT key_digest AS t FROM sessions").contains(&SecretDigest::of(&key).as_str().to_owned()));
        for token in &secrets[1..] {
            assert!(db.texts("SELECT digest AS t FROM account_tokens").contains(&SecretDigest::of(token).as_str().to_owned()));
        }
        server.stop().await;
    }

    async fn both_flows_work_end_to_end_through_a_real_smtp_server(db) {
        if !SmtpSink::available_or_skip("both_flows_work_end_to_end_through_a_real_smtp_server") {
            return;
        }
        let sink = SmtpSink::start();
        let server = Server::start(mailing_by_smtp(&db, &sink.url())).await;
        let mut alice = server.client();
        sign_up_with_email(&mut alice, "alice", "alice@example.com").await;
        let mut phone = server.client();
        assert_eq!(log_in(&mut phone, "alice", PASSWORD).await.status, 200);

        let verify = &mail_from(&sink, 1, Duration::from_secs(10)).await[0];
        assert_eq!(verify.to, "alice@example.com");
        assert!(verify.link("/verify").unwrap().starts_with("https://chat.example.com/verify?token="));
        let verified = server.client().post("/api/email/verify", json!({"token": token_in(verify, "/verify")})).await;
        assert_eq!(verified.status, 200, "{verified:?}");

        // The same answer for an address no account has, and no mail for it.
        let known = server.client().post("/api/password/forgot", json!({"email": "ALICE@example.com"})).await;
        let unknown = server.client().post("/api/password/forgot", json!({"email": "nobody@example.com"})).await;
        assert_eq!((known.status.as_u16(), unknown.status.as_u16()), (202, 202));
        assert_eq!(known.body, unknown.body);
        let reset = mail_from(&sink, 2, Duration::from_secs(10)).await.remove(1);
        assert_eq!(reset.to, "alice@example.com");
        assert_eq!(reset.subject, "Reset your password");
        let token = token_in(&reset, "/reset");

        let weak = server.client().post("/api/password/reset", json!({"token": token, "new_password": "short"})).await;
        weak.assert_error(400, "validation_failed");
        let done = server.client().post("/api/password/reset", json!({"token": token, "new_password": "a brand new one"})).await;
        assert_eq!(done.status, 200, "{done:?}");
        alice.get("/api/me").await.assert_error(401, "unauthorized");
        phone.get("/api/me").await.assert_error(401, "unauthorized");
        let again = server.client().post("/api/password/reset", json!({"token": token, "new_password": "another one"})).await;
        again.assert_error(400, "invalid_token");
        assert_eq!(log_in(&mut alice, "alice", PASSWORD).await.status, 401);
        assert_eq!(log_in(&mut alice, "alice", "a brand new one").await.status, 200);
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sink.received().len(), 2, "no mail for the address no account has");
        server.stop().await;
    }

    async fn a_mail_queued_while_the_smtp_server_is_down_arrives_once_it_is_up(db) {
        if !SmtpSink::available_or_skip("a_mail_queued_while_the_smtp_server_is_down_arrives_once_it_is_up") {
            return;
        }
        let port = free_port();
        let server = Server::start(mailing_by_smtp(&db, &format!("smtp://127.0.0.1:{port}"))).await;
        let mut alice = server.client();
        sign_up_with_email(&mut alice, "alice", "alice@example.com").await;
        let started = std::time::Instant::now();
        let forgot = server.client().post("/api/password/forgot", json!({"email": "alice@example.com"})).await;
        assert_eq!(forgot.status, 202, "the relay being down fails nothing");
        assert!(started.elapsed() < Duration::from_secs(2), "nor slows the answer");
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;

        let sink = SmtpSink::start_on(port);
        let mails = mail_from(&sink, 2, Duration::from_secs(20)).await;
        let reset = mails.iter().find(|m| m.subject == "Reset your password").expect("the reset mail");
        let done = server.client()
            .post("/api/password/reset", json!({"token": token_in(reset, "/reset"), "new_password": "a brand new one"}))
            .await;
        assert_eq!(done.status, 200, "{done:?}");
        server.stop().await;
    }

    async fn links_expire_a_newer_reset_link_voids_the_older_and_a_new_address_voids_both(db) {
        let mail = tempfile::tempdir().unwrap();
        let clock = ManualClock::starting_at(Timestamp::from_unix_millis(1_795_586_834_000).unwrap());
        let server = Server::start_with_clock(mailing_to(&db, mail.path()), &clock).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        assert_eq!(alice.patch("/api/me", json!({"email": "alice@example.com"})).await.status, 200);
        let mut seen = Vec::new();
        let verify = token_in(&next_mail(mail.path(), &mut seen).await, "/verify");
        let forgot = json!({"email": "alice@example.com"});
        assert_eq!(server.client().post("/api/password/forgot", forgot.clone()).await.status, 202);
        let first = token_in(&next_mail(mail.path(), &mut seen).await, "/reset");
        assert_eq!(server.client().post("/api/password/forgot", forgot.clone()).await.status, 202);
        let second = token_in(&next_mail(mail.path(), &mut seen).await, "/reset");

        let reset = |token: String| json!({"token": token, "new_password": "a brand new one"});
        server.client().post("/api/password/reset", reset(first)).await.assert_error(400, "invalid_token");
        clock.advance(Duration::from_secs(30 * 60));
        server.client().post("/api/password/reset", reset(second)).await.assert_error(400, "invalid_token");
        assert_eq!(log_in(&mut alice, "alice", PASSWORD).await.status, 200, "no reset happened");

        // A verification link lasts a day.
        clock.advance(Duration::from_secs(24 * 60 * 60 - 30 * 60));
        server.client().post("/api/email/verify", json!({"token": verify})).await.assert_error(400, "invalid_token");
        assert_eq!(log_in(&mut alice, "alice", PASSWORD).await.status, 200, "the session idled out");
        assert_eq!(alice.get("/api/me").await.body["email_verified"], false);

        // A reset link mailed to an address the account left no longer works.
        assert_eq!(server.client().post("/api/password/forgot", forgot).await.status, 202);
        let third = token_in(&next_mail(mail.path(), &mut seen).await, "/reset");
        assert_eq!(alice.patch("/api/me", json!({"email": "alice@new.example"})).await.status, 200);
        server.client().post("/api/password/reset", reset(third)).await.assert_error(400, "invalid_token");
        server.stop().await;
    }

    async fn mails_and_password_checks_are_rate_limited(db) {
        let mail = tempfile::tempdir().unwrap();
        let server = Server::start(settings(
            &db,
            &[
                ("CHATBOT__MAIL__FILE_DIR", mail.path().to_str().unwrap()),
                ("CHATBOT__RATE_LIMIT__ENABLED", "true"),
                ("CHATBOT__RATE_LIMIT__MAIL_BURST", "2"),
                ("CHATBOT__RATE_LIMIT__AUTH_BURST", "4"),
                ("CHATBOT__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"),
            ],
        ))
        .await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;

        // Per address asked for: a third reset for one address is refused, from
        // whichever client address (the proxy says) it comes.
        let forgot = json!({"email": "someone@example.com"}).to_string();
        let from = |n: u8| format!("203.0.113.{n}");
        for n in 1..=2 {
            let client = from(n);
            let reply = server.client().send(Method::POST, "/api/password/forgot", Some(forgot.clone()), &[("x-forwarded-for", &client)]).await;
            assert_eq!(reply.status, 202, "{reply:?}");
        }
        let client = from(3);
        let limited = server.client().send(Method::POST, "/api/password/forgot", Some(forgot), &[("x-forwarded-for", &client)]).await;
        limited.assert_error(429, "rate_limited");
        assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
        // Per client address: a third mail from one client, whatever the address.
        let client = from(9);
        for n in 1..=3 {
            let other = json!({"email": format!("other{n}@example.com")}).to_string();
            let reply = server.client().send(Method::POST, "/api/password/forgot", Some(other), &[("x-forwarded-for", &client)]).await;
            assert_eq!(reply.status.as_u16(), if n < 3 { 202 } else { 429 }, "{reply:?}");
        }
        // Per account: verification mails, whatever the client address.
        assert_eq!(alice.patch("/api/me", json!({"email": "alice@example.com"})).await.status, 200);
        let client = from(20);
        let verify = alice.send(Method::POST, "/api/me/email/verify", None, &[("x-forwarded-for", &client)]).await;
        assert_eq!(verify.status, 202, "{verify:?}");
        let client = from(21);
        let limited = alice.send(Method::POST, "/api/me/email/verify", None, &[("x-forwarded-for", &client)]).await;
        limited.assert_error(429, "rate_limited");
        // A change that mails nothing spends nothing.
        assert_eq!(alice.patch("/api/me", json!({"display_name": "A", "email": "ALICE@example.com"})).await.status, 200);

        // Wrong current passwords count like logins (signup and login took 2 of 4).
        let wrong = json!({"current_password": "guess", "new_password": "a new password"});
        for _ in 0..2 {
            alice.post("/api/me/password", wrong.clone()).await.assert_error(400, "validation_failed");
        }
        let limited = alice.post("/api/me/password", wrong).await;
        limited.assert_error(429, "rate_limited");
        assert!(limited.header("retry-after").is_some());
        server.stop().await;
    }
}
