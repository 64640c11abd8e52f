//! The queue's cap, through the mailer (the scheduling itself is unit-tested in
//! `src/schedule.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chatbot_domain::TokenPurpose;
use chatbot_domain::ports::Mailer;
use chatbot_mail::testing::free_port;
use chatbot_mail::{LettreMailer, MAX_QUEUED};
use common::{all_logs, capture_logs, config, log_lines, mail, smtp};

#[test]
fn mail_past_the_cap_is_dropped_with_an_error() {
    capture_logs();
    // Nothing listens there: every mail fails and waits a minute for its next try.
    let port = free_port();
    let mailer = LettreMailer::new(config(
        smtp(format!("smtp://127.0.0.1:{port}")),
        Duration::from_secs(60),
    ))
    .unwrap();
    for n in 0..MAX_QUEUED {
        mailer.send(mail(
            TokenPurpose::VerifyEmail,
            "ada@queued.example",
            "Ada",
            &format!("queued-{n}"),
        ));
    }
    assert!(log_lines("full.example").is_empty());
    mailer.send(mail(
        TokenPurpose::ResetPassword,
        "ada@full.example",
        "Ada",
        "one-too-many",
    ));
    let dropped = log_lines("full.example");
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert!(dropped[0].contains("ERROR"), "{}", dropped[0]);
    assert!(
        dropped[0].contains("mail dropped: the mail queue is full"),
        "{}",
        dropped[0]
    );
    assert!(
        dropped[0].contains("purpose=reset_password"),
        "{}",
        dropped[0]
    );
    assert!(dropped[0].contains("max_queued=10000"), "{}", dropped[0]);
    assert!(format!("{mailer:?}").contains("queued: 10000"));
    // What was queued is all still there, lost at close.
    assert_eq!(mailer.close(Duration::ZERO), MAX_QUEUED);
    let all = all_logs();
    assert!(!all.contains("one-too-many"));
    assert!(!all.contains("ada@"));
}
