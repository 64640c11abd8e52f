//! A real SMTP server for tests (the `test-support` feature), and a reader for what it
//! received.
//!
//! [`SmtpSink`] runs [aiosmtpd](https://aiosmtpd.aio-libs.org/) (Python) on loopback
//! with its `Mailbox` handler, which writes every mail it accepts into a Maildir:
//! `python -m aiosmtpd -n -l 127.0.0.1:<port> -c aiosmtpd.handlers.Mailbox <maildir>`.
//! The Python comes from the environment variable `SMTP_SINK_PYTHON`, else
//! `target/smtp-venv/bin/python` in the workspace (which `scripts/test.sh` makes).
//! A test first calls [`SmtpSink::available_or_skip`]: without such a Python the test
//! fails when `CI` is set, and otherwise prints a `SKIPPED` line and returns.
//!
//! [`ReceivedMail`] parses a raw mail (headers decoded, the plain-text and HTML parts
//! decoded) and finds the token of the link in it. Failing to set anything up panics:
//! this is test code.
//!
//! ```no_run
//! use std::time::Duration;
//! use chatbot_mail::testing::{ReceivedMail, SmtpSink};
//! if SmtpSink::available_or_skip("my_test") {
//!     let sink = SmtpSink::start();
//!     // ... point a mailer at sink.url() and send a mail ...
//!     let mail = &sink.wait_for_mail(1, Duration::from_secs(10))[0];
//!     let token = ReceivedMail::parse(mail).token("/verify");
//! }
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use percent_encoding::percent_decode_str;
use tempfile::TempDir;

/// How to get a Python with aiosmtpd, for the messages of a missing one.
const INSTALL: &str = "python3 -m venv target/smtp-venv && \
                       target/smtp-venv/bin/pip install aiosmtpd (scripts/test.sh does it), \
                       or set SMTP_SINK_PYTHON to a python that has aiosmtpd";

/// How long the server has to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An aiosmtpd process on `127.0.0.1`, storing what it receives in a Maildir of its
/// own; stopped when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl SmtpSink {
    /// The Python with aiosmtpd to run, if there is one: `SMTP_SINK_PYTHON`, else
    /// `target/smtp-venv/bin/python` of the workspace; `Err` says what was tried.
    pub fn python() -> Result<PathBuf, String> {
        static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        FOUND
            .get_or_init(|| {
                let python = match std::env::var_os("SMTP_SINK_PYTHON") {
                    Some(python) => PathBuf::from(python),
                    None => Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../target/smtp-venv/bin/python"),
                };
                let checked = Command::new(&python)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                match checked {
                    Ok(status) if status.success() => Ok(python),
                    Ok(_) => Err(format!("{} has no aiosmtpd", python.display())),
                    Err(error) => Err(format!("{} cannot run: {error}", python.display())),
                }
            })
            .clone()
    }

    /// Whether the SMTP tests can run. When they cannot: with `CI` set, panics saying
    /// how to install aiosmtpd (nothing skips silently in CI); otherwise prints
    /// `SKIPPED <test>: …` to stderr and returns `false`, and the test should return.
    pub fn available_or_skip(test: &str) -> bool {
        match Self::python() {
            Ok(_) => true,
            Err(missing) if std::env::var_os("CI").is_some() => {
                panic!("{test} needs an SMTP server: {missing}; install it: {INSTALL}")
            }
            Err(missing) => {
                // Straight to the process's stderr: the test harness captures
                // `eprintln!`, and a skip must show.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: no SMTP server to test with ({missing}); {INSTALL}"
                );
                false
            }
        }
    }

    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// Starts a server on `port` (one a test reserved with [`free_port`] and left
    /// unanswered for a while).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(Some(port), None)
    }

    /// Starts a server on a free port that refuses for good (SMTP 552) a mail of more
    /// than `bytes`.
    pub fn start_with_size_limit(bytes: usize) -> Self {
        Self::start_with(None, Some(bytes))
    }

    fn start_with(port: Option<u16>, size_limit: Option<usize>) -> Self {
        let python = Self::python().unwrap_or_else(|missing| {
            panic!("no SMTP server to test with: {missing}; install it: {INSTALL}")
        });
        // A free port may be taken by another process before the server binds it: try
        // again with another one.
        let tries = if port.is_some() { 1 } else { 5 };
        let mut failures = Vec::new();
        for _ in 0..tries {
            let port = port.unwrap_or_else(free_port);
            match Self::spawn(&python, port, size_limit) {
                Ok(sink) => return sink,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("the SMTP server did not start: {}", failures.join("; "))
    }

    fn spawn(python: &Path, port: u16, size_limit: Option<usize>) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let log_path = dir.path().join("aiosmtpd.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut command = Command::new(python);
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"));
        if let Some(bytes) = size_limit {
            command.arg("-s").arg(bytes.to_string());
        }
        command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = command
            .spawn()
            .map_err(|error| format!("{} cannot run: {error}", python.display()))?;
        let mut sink = Self { child, port, dir };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = sink.child.try_wait().unwrap() {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("aiosmtpd on port {port} exited ({status}): {log}"));
            }
            if greets(port) {
                return Ok(sink);
            }
            if Instant::now() > deadline {
                sink.kill();
                return Err(format!(
                    "aiosmtpd on port {port} did not answer in {START_TIMEOUT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`, for [`Transport::Smtp`](crate::Transport::Smtp).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The raw mails received so far, in the order they arrived.
    pub fn received(&self) -> Vec<String> {
        let mut files: Vec<(MaildirName, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| fs::read_dir(self.dir.path().join("maildir").join(sub)).ok())
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| {
                (
                    MaildirName::of(&entry.file_name().to_string_lossy()),
                    entry.path(),
                )
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| fs::read_to_string(path).unwrap())
            .collect()
    }

    /// Waits until at least `count` mails were received or `timeout` passed, and
    /// returns the raw mails received by then, in order (check their number).
    pub fn wait_for_mail(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() > deadline {
                return received;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server (as dropping it does).
    pub fn stop(self) {}

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether an SMTP server greets on `127.0.0.1:port` (the greeting is read, then
/// `QUIT` sent).
fn greets(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let greeted = BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("220");
    let _ = stream.write_all(b"QUIT\r\n");
    greeted
}

/// A port nothing listens on now: the operating system's pick, released at once. A
/// test connecting to it before a server starts on it is refused.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Maildir file name as Python's `mailbox` writes it, `<secs>.M<micros>P<pid>Q<n>.<host>`,
/// ordered as the mails arrived.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MaildirName {
    key: Option<(u64, u64, u64)>,
    name: String,
}

impl MaildirName {
    fn of(name: &str) -> Self {
        let number = |text: &str| text.parse::<u64>().ok();
        let key = (|| {
            let (secs, rest) = name.split_once(".M")?;
            let (micros, rest) = rest.split_once('P')?;
            let (_, rest) = rest.split_once('Q')?;
            let (count, _) = rest.split_once('.')?;
            Some((number(secs)?, number(micros)?, number(count)?))
        })();
        Self {
            key,
            name: name.to_owned(),
        }
    }
}

/// A mail as received, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `Subject`.
    pub subject: String,
    /// The `From` address.
    pub from: String,
    /// The `To` address.
    pub to: String,
    /// The name in `To`, if any.
    pub to_name: Option<String>,
    /// The `Message-ID`, without its angle brackets.
    pub message_id: Option<String>,
    /// The top `Content-Type`, such as `multipart/alternative`.
    pub content_type: String,
    /// The `text/plain` part, decoded, if there is one.
    pub text: Option<String>,
    /// The `text/html` part, decoded, if there is one.
    pub html: Option<String>,
}

impl ReceivedMail {
    /// Parses `raw`; panics if it is not a mail.
    pub fn parse(raw: &str) -> Self {
        let message = MessageParser::default()
            .parse(raw)
            .unwrap_or_else(|| panic!("not a mail: {raw}"));
        let to = message.to().and_then(|to| to.first());
        let content_type = message
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(subtype) => format!("{}/{subtype}", ct.ctype()),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_default();
        let text = message.text_part(0).and_then(|part| match &part.body {
            PartType::Text(text) => Some(text.to_string()),
            _ => None,
        });
        let html = message.html_part(0).and_then(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        });
        Self {
            subject: message.subject().unwrap_or_default().to_owned(),
            from: message
                .from()
                .and_then(|from| from.first())
                .and_then(|from| from.address())
                .unwrap_or_default()
                .to_owned(),
            to: to
                .and_then(|to| to.address())
                .unwrap_or_default()
                .to_owned(),
            to_name: to.and_then(|to| to.name()).map(str::to_owned),
            message_id: message.message_id().map(str::to_owned),
            content_type,
            text,
            html,
        }
    }

    /// The link to `page` (`"/verify"` or `"/reset"`) in the plain-text part, as written.
    pub fn link(&self, page: &str) -> Option<String> {
        let text = self.text.as_deref()?;
        let marker = format!("{page}?token=");
        let at = text.find(&marker)?;
        let start = text[..at]
            .rfind(char::is_whitespace)
            .map_or(0, |space| space + 1);
        let end = text[at..]
            .find(char::is_whitespace)
            .map_or(text.len(), |space| at + space);
        Some(text[start..end].to_owned())
    }

    /// The token of the link to `page` in the plain-text part, percent-decoded.
    pub fn token(&self, page: &str) -> Option<String> {
        let link = self.link(page)?;
        let (_, token) = link.split_once("?token=")?;
        Some(percent_decode_str(token).decode_utf8().ok()?.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_names_sort_in_arrival_order() {
        let mut names = [
            "1796014932.M219173P11852Q10.vm",
            "1796014932.M219173P11852Q9.vm",
            "1796014931.M999999P11852Q8.vm",
        ]
        .map(MaildirName::of);
        names.sort();
        let order: Vec<_> = names.iter().map(|name| name.key.unwrap().2).collect();
        assert_eq!(order, [8, 9, 10]);
    }
}
