//! The SMTP transport against a real SMTP server (aiosmtpd, see
//! `chatbot_mail::testing`): delivery, order, retries, refusals and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use chatbot_domain::TokenPurpose;
use chatbot_domain::ports::Mailer;
use chatbot_mail::testing::{ReceivedMail, SmtpSink, free_port};
use chatbot_mail::{LettreMailer, SmtpTls, Transport};
use common::{all_logs, capture_logs, config, log_lines, mail, smtp};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn mail_is_delivered_in_order_and_close_waits_for_it() {
    if !SmtpSink::available_or_skip("mail_is_delivered_in_order_and_close_waits_for_it") {
        return;
    }
    capture_logs();
    let sink = SmtpSink::start();
    let mailer = LettreMailer::new(config(smtp(sink.url()), Duration::from_millis(100))).unwrap();
    mailer.send(mail(
        TokenPurpose::VerifyEmail,
        "ada.first@delivered.example",
        "<b>Ada</b>",
        "token-1+/=",
    ));
    for n in 2..=3 {
        mailer.send(mail(
            TokenPurpose::ResetPassword,
            "ada.next@delivered.example",
            "Ada",
            &format!("token-{n}"),
        ));
    }
    // Everything queued is sent before close returns.
    assert_eq!(mailer.close(WAIT), 0);
    let received = sink.wait_for_mail(3, WAIT);
    assert_eq!(received.len(), 3);

    let first = ReceivedMail::parse(&received[0]);
    assert_eq!(first.subject, "Verify your email address");
    assert_eq!(first.content_type, "multipart/alternative");
    assert_eq!(first.from, "noreply@localhost");
    assert_eq!(first.to, "ada.first@delivered.example");
    assert_eq!(first.token("/verify").as_deref(), Some("token-1+/="));
    assert!(
        first
            .html
            .as_deref()
            .unwrap()
            .contains("Hello &lt;b&gt;Ada&lt;/b&gt;,")
    );
    let tokens: Vec<_> = received[1..]
        .iter()
        .map(|raw| ReceivedMail::parse(raw).token("/reset").unwrap())
        .collect();
    assert_eq!(tokens, ["token-2", "token-3"]);

    let logs = log_lines("delivered.example");
    assert_eq!(
        logs.iter()
            .filter(|line| line.contains("mail sent"))
            .count(),
        3,
        "{logs:#?}"
    );
    assert!(!all_logs().contains("ada.first"), "{logs:#?}");
    assert!(!all_logs().contains("token-1"), "{logs:#?}");
}

#[test]
fn a_relay_down_at_first_gets_the_mail_once_it_is_up() {
    if !SmtpSink::available_or_skip("a_relay_down_at_first_gets_the_mail_once_it_is_up") {
        return;
    }
    capture_logs();
    let port = free_port();
    let mailer = LettreMailer::new(config(
        smtp(format!("smtp://127.0.0.1:{port}")),
        Duration::from_millis(100),
    ))
    .unwrap();
    mailer.send(mail(
        TokenPurpose::ResetPassword,
        "ada.waiting@later.example",
        "Ada",
        "s3cret-later-token",
    ));
    // 100 ms, 200 ms, 400 ms: three failed attempts at least.
    thread::sleep(Duration::from_millis(800));
    assert!(
        log_lines("later.example")
            .iter()
            .any(|line| line.contains("attempt=3")),
        "{:#?}",
        log_lines("later.example")
    );
    let sink = SmtpSink::start_on(port);
    let received = sink.wait_for_mail(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_eq!(
        ReceivedMail::parse(&received[0]).token("/reset").as_deref(),
        Some("s3cret-later-token")
    );
    assert_eq!(mailer.close(WAIT), 0);

    let logs = log_lines("later.example");
    let retries: Vec<_> = logs
        .iter()
        .filter(|line| line.contains("trying again"))
        .collect();
    assert!(retries.len() >= 3, "{logs:#?}");
    for line in &retries {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("next_delay="), "{line}");
        assert!(line.contains("purpose=reset_password"), "{line}");
    }
    // The delays double up to the maximum (4 × first).
    assert!(retries[0].contains("next_delay=100ms"), "{}", retries[0]);
    assert!(retries[1].contains("next_delay=200ms"), "{}", retries[1]);
    assert!(retries[2].contains("next_delay=400ms"), "{}", retries[2]);
    assert!(
        logs.iter().any(|line| line.contains("mail sent")),
        "{logs:#?}"
    );
    let all = all_logs();
    assert!(!all.contains("s3cret-later-token"), "{all}");
    assert!(!all.contains("reset?token"), "{all}");
    assert!(!all.contains("ada.waiting"), "{all}");
}

#[test]
fn a_mail_refused_for_good_is_dropped_and_the_next_one_goes() {
    if !SmtpSink::available_or_skip("a_mail_refused_for_good_is_dropped_and_the_next_one_goes") {
        return;
    }
    capture_logs();
    let sink = SmtpSink::start_with_size_limit(10_000);
    let mailer = LettreMailer::new(config(smtp(sink.url()), Duration::from_millis(100))).unwrap();
    // Too big for the server: 552, a permanent refusal.
    mailer.send(mail(
        TokenPurpose::VerifyEmail,
        "ada@refused.example",
        "Ada",
        &"x".repeat(20_000),
    ));
    mailer.send(mail(
        TokenPurpose::VerifyEmail,
        "ada@refused.example",
        "Ada",
        "the-next-one",
    ));
    let received = sink.wait_for_mail(1, WAIT);
    assert_eq!(mailer.close(WAIT), 0);
    assert_eq!(received.len(), 1);
    assert_eq!(
        ReceivedMail::parse(&received[0])
            .token("/verify")
            .as_deref(),
        Some("the-next-one")
    );
    assert_eq!(sink.received().len(), 1);

    let logs = log_lines("refused.example");
    let refused: Vec<_> = logs
        .iter()
        .filter(|line| line.contains("mail refused; dropped"))
        .collect();
    assert_eq!(refused.len(), 1, "{logs:#?}");
    assert!(refused[0].contains("ERROR"), "{}", refused[0]);
    assert!(refused[0].contains("552"), "{}", refused[0]);
    assert!(
        !logs.iter().any(|line| line.contains("trying again")),
        "{logs:#?}"
    );
}

#[test]
fn close_with_an_unreachable_relay_returns_after_its_grace_and_counts_the_lost() {
    capture_logs();
    // Nothing listens there: every attempt is refused at once.
    let port = free_port();
    let mailer = LettreMailer::new(config(
        smtp(format!("smtp://127.0.0.1:{port}")),
        Duration::from_millis(50),
    ))
    .unwrap();
    for n in 0..3 {
        mailer.send(mail(
            TokenPurpose::VerifyEmail,
            "ada@unreachable.example",
            "Ada",
            &format!("lost-{n}"),
        ));
    }
    let grace = Duration::from_millis(600);
    let started = Instant::now();
    assert_eq!(mailer.close(grace), 3);
    let took = started.elapsed();
    assert!(took >= grace, "{took:?}");
    assert!(took < grace + Duration::from_secs(2), "{took:?}");

    // Closed: mail is dropped at once, and closing again reports nothing.
    mailer.send(mail(
        TokenPurpose::VerifyEmail,
        "ada@unreachable.example",
        "Ada",
        "after-close",
    ));
    assert_eq!(mailer.close(grace), 0);
    let all = all_logs();
    assert!(all.contains("unsent=3"), "{all}");
    assert!(
        log_lines("unreachable.example")
            .iter()
            .any(|line| line.contains("mail dropped: the mailer is closing")),
        "{all}"
    );
}

#[test]
fn credentials_stay_out_of_debug_output_and_logs() {
    capture_logs();
    let port = free_port();
    let transport = Transport::Smtp {
        url: format!("smtp://url-user:hunter2@127.0.0.1:{port}"),
        tls: SmtpTls::None,
        username: Some("key-user".to_owned()),
        password: Some("swordfish".to_owned()),
    };
    let config = config(transport, Duration::from_millis(50));
    let config_debug = format!("{config:?}");
    let mailer = LettreMailer::new(config).unwrap();
    mailer.send(mail(
        TokenPurpose::VerifyEmail,
        "ada@credentials.example",
        "Ada",
        "tok",
    ));
    thread::sleep(Duration::from_millis(200));
    let mailer_debug = format!("{mailer:?}");
    mailer.close(Duration::ZERO);
    let all = all_logs();
    for secret in ["hunter2", "swordfish", "url-user", "key-user"] {
        assert!(!config_debug.contains(secret), "{config_debug}");
        assert!(!mailer_debug.contains(secret), "{mailer_debug}");
        assert!(!all.contains(secret), "{all}");
    }
    assert!(
        all.contains("the SMTP password is sent without TLS"),
        "{all}"
    );
}

#[test]
fn tls_to_the_relay_is_set_up_on_rustls() {
    for tls in [SmtpTls::StartTls, SmtpTls::Tls] {
        let transport = Transport::Smtp {
            url: "smtp://smtp.example.com".to_owned(),
            tls,
            username: None,
            password: None,
        };
        let mailer = LettreMailer::new(config(transport, Duration::from_millis(50))).unwrap();
        let debug = format!("{mailer:?}");
        let port = if tls == SmtpTls::Tls { 465 } else { 587 };
        assert!(
            debug.contains(&format!("smtp.example.com:{port}")),
            "{debug}"
        );
        assert_eq!(mailer.close(Duration::ZERO), 0);
    }
}
