//! The file transport: one `.eml` per mail, read back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use chatbot_domain::TokenPurpose;
use chatbot_domain::ports::Mailer;
use chatbot_mail::testing::ReceivedMail;
use chatbot_mail::{LettreMailer, Transport};
use common::{capture_logs, config, log_lines, mail};

fn eml_files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_file_transport_writes_one_eml_per_mail_with_the_link() {
    capture_logs();
    let root = tempfile::tempdir().unwrap();
    // Missing: the mailer makes it.
    let dir = root.path().join("data").join("mail");
    let mailer = LettreMailer::new(config(
        Transport::File { dir: dir.clone() },
        Duration::from_millis(100),
    ))
    .unwrap();
    // Characters a URL must encode, to see them come back.
    let verify_token = "v3rify+token/with=odd&chars";
    let reset_token = "reset_TOKEN-0123456789~abc";
    mailer.send(mail(
        TokenPurpose::VerifyEmail,
        "ada@files.example",
        "<b>Ada</b>",
        verify_token,
    ));
    mailer.send(mail(
        TokenPurpose::ResetPassword,
        "grace@files.example",
        "Grace Hopper",
        reset_token,
    ));
    assert_eq!(mailer.close(Duration::from_secs(10)), 0);

    let files = eml_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let mails: Vec<ReceivedMail> = files
        .iter()
        .map(|file| ReceivedMail::parse(&fs::read_to_string(file).unwrap()))
        .collect();
    let verify = mails
        .iter()
        .find(|mail| mail.subject == "Verify your email address")
        .unwrap();
    let reset = mails
        .iter()
        .find(|mail| mail.subject == "Reset your password")
        .unwrap();

    assert_eq!(verify.content_type, "multipart/alternative");
    assert!(
        verify
            .message_id
            .as_deref()
            .is_some_and(|id| id.contains('@'))
    );
    assert_eq!(verify.from, "noreply@localhost");
    assert_eq!(verify.to, "ada@files.example");
    assert_eq!(verify.to_name.as_deref(), Some("<b>Ada</b>"));
    assert!(
        verify
            .link("/verify")
            .unwrap()
            .starts_with("http://localhost:5000/verify?token=")
    );
    assert_eq!(verify.token("/verify").as_deref(), Some(verify_token));
    let text = verify.text.as_deref().unwrap();
    assert!(text.starts_with("Hello <b>Ada</b>,"), "{text}");
    assert!(text.contains("24 hours"), "{text}");
    assert!(
        text.contains("If you did not ask for this, ignore this mail"),
        "{text}"
    );
    let html = verify.html.as_deref().unwrap();
    assert!(html.contains("Hello &lt;b&gt;Ada&lt;/b&gt;,"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(html.contains("24 hours"), "{html}");
    assert!(
        html.contains("href=\"http://localhost:5000/verify?token="),
        "{html}"
    );

    assert_eq!(reset.to, "grace@files.example");
    assert_eq!(reset.token("/reset").as_deref(), Some(reset_token));
    assert!(reset.token("/verify").is_none());
    assert!(reset.text.as_deref().unwrap().contains("30 minutes"));
    assert!(reset.html.as_deref().unwrap().contains("30 minutes"));

    let sent = log_lines("files.example");
    assert_eq!(
        sent.iter()
            .filter(|line| line.contains("mail sent"))
            .count(),
        2,
        "{sent:#?}"
    );
    for line in &sent {
        assert!(line.contains("INFO"), "{line}");
        assert!(!line.contains("ada@") && !line.contains("grace@"), "{line}");
        assert!(!line.contains("token"), "{line}");
    }
}

#[test]
fn a_directory_that_cannot_be_written_starts_the_mailer_and_its_mail_waits() {
    // A disk that takes no writes must not keep the service from serving: the mailer
    // starts, and its mail waits, tried again, until the directory can be written.
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("a-file");
    fs::write(&file, b"").unwrap();
    let mailer = LettreMailer::new(config(
        Transport::File {
            dir: file.join("mail"),
        },
        Duration::from_millis(50),
    ))
    .expect("the mailer starts");
    mailer.send(mail(
        TokenPurpose::ResetPassword,
        "ada@example.com",
        "Ada",
        "waiting-token",
    ));
    assert_eq!(
        mailer.close(Duration::from_millis(300)),
        1,
        "not sent, not lost silently"
    );
}

#[test]
fn a_bad_sender_or_public_url_is_refused_saying_what_to_fix() {
    let root = tempfile::tempdir().unwrap();
    let transport = Transport::File {
        dir: root.path().to_owned(),
    };
    let mut bad_from = config(transport.clone(), Duration::from_millis(100));
    bad_from.from = "Chatbot".to_owned();
    let message = LettreMailer::new(bad_from).unwrap_err().to_string();
    assert!(message.contains("is not a mailbox"), "{message}");

    let mut bad_url = config(transport, Duration::from_millis(100));
    bad_url.public_url = "localhost:5000".to_owned();
    let message = LettreMailer::new(bad_url).unwrap_err().to_string();
    assert!(message.contains("http(s)://host"), "{message}");
}
