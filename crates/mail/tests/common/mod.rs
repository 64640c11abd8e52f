//! What the tests share: mails, configurations and the logs of the mail thread.

#![allow(dead_code)]

use std::io;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chatbot_domain::{AccountMail, DisplayName, Email, SecretToken, TokenPurpose};
use chatbot_mail::{MailConfig, Retry, SmtpTls, Transport};

/// A mail to `to`.
pub fn mail(purpose: TokenPurpose, to: &str, name: &str, token: &str) -> AccountMail {
    AccountMail {
        to: Email::parse(to).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        purpose,
        token: SecretToken::new(token),
    }
}

/// A configuration sending through `transport`, retrying after `first` up to 4 times that.
pub fn config(transport: Transport, first: Duration) -> MailConfig {
    MailConfig {
        transport,
        from: "Chatbot <noreply@localhost>".to_owned(),
        public_url: "http://localhost:5000".to_owned(),
        retry: Retry {
            first,
            max: first * 4,
        },
    }
}

/// The SMTP relay at `url`, in plain text, without logging in.
pub fn smtp(url: String) -> Transport {
    Transport::Smtp {
        url,
        tls: SmtpTls::None,
        username: None,
        password: None,
    }
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts capturing every thread's logs (once per test binary).
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
    });
}

/// The captured log lines that mention `needle` (tests running at the same time log
/// too: each test uses a domain of its own).
pub fn log_lines(needle: &str) -> Vec<String> {
    let logs = LOGS.lock().unwrap();
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Every captured log line.
pub fn all_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}
