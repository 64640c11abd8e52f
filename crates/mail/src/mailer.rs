//! The mailer: a queue in memory and the thread that empties it.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chatbot_domain::ports::Mailer;
use chatbot_domain::{AccountMail, TokenPurpose};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, FileTransport, Message, SmtpTransport, Transport as _};

use crate::compose::compose;
use crate::config::{
    ConfigError, MailConfig, Retry, SmtpRelay, SmtpTls, Transport, check_retry, parse_from,
    parse_public_url, prepare_dir,
};

/// How long the SMTP client waits to connect to the relay, and for each answer: short,
/// so that a dead relay holds the mail thread for seconds, not minutes.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Mailer`] port on lettre: mail is composed at once, queued in memory and sent in
/// order by a thread of its own (`chatbot-mail`), over SMTP or as `.eml` files.
///
/// [`send`](Mailer::send) never blocks and never fails. A mail that fails for a reason
/// that may pass (the relay refuses the connection or times out, an SMTP 4xx answer, a
/// file that cannot be written) is tried again after [`Retry::first`], then after
/// twice as long each time up to [`Retry::max`], for as long as the process runs, the
/// mails behind it waiting; each failed attempt is logged at WARN. A mail the relay
/// refuses for good (an SMTP 5xx answer) is logged at ERROR and dropped. A mail sent is
/// logged at INFO with its purpose and the recipient's domain. No log holds a token, a
/// link or the recipient's full address.
///
/// **The queue is in memory only**: mail not sent when the process ends is lost (the
/// tokens in it expire unused; the user asks for another mail). Call
/// [`close`](Self::close) at shutdown to give the queue time to empty and to log how
/// many were lost; dropping the mailer without closing it gives up on what is queued at
/// once.
pub struct LettreMailer {
    shared: Arc<Shared>,
    from: Mailbox,
    public_url: String,
    description: String,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the callers and the mail thread share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Mail waiting, oldest first (the one being sent is not in it).
    queue: VecDeque<Job>,
    /// Whether the thread is sending (or waiting to try again) a mail.
    in_flight: bool,
    /// Whether `close` was called: no more mail is taken.
    closing: bool,
    /// Set by the thread once closing and nothing is left.
    finished: bool,
    /// Set when the mailer gives up on what is left: the thread stops.
    abandoned: bool,
}

/// A mail ready to go.
struct Job {
    purpose: TokenPurpose,
    /// The recipient, kept to be blotted out of error messages.
    address: String,
    /// The recipient's domain, for logs.
    domain: String,
    message: Message,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic: every change is a single step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LettreMailer {
    /// Checks `config` (the SMTP URL and credentials, the sender, the public URL, the
    /// retry delays; makes the mail directory if it is missing and checks that it can be
    /// written to; sets up TLS) and starts the mail thread.
    ///
    /// ```
    /// use chatbot_mail::{LettreMailer, MailConfig, Retry, SmtpTls, Transport};
    /// let config = |url: &str| MailConfig {
    ///     transport: Transport::Smtp {
    ///         url: url.to_owned(),
    ///         tls: SmtpTls::None,
    ///         username: None,
    ///         password: None,
    ///     },
    ///     from: "Chatbot <noreply@localhost>".to_owned(),
    ///     public_url: "http://localhost:5000".to_owned(),
    ///     retry: Retry::default(),
    /// };
    /// assert!(LettreMailer::new(config("smtp://127.0.0.1:1025")).is_ok());
    /// let refused = LettreMailer::new(config("127.0.0.1:1025")).unwrap_err();
    /// assert!(refused.to_string().contains("smtp://[user:password@]host[:port]"));
    /// ```
    pub fn new(config: MailConfig) -> Result<Self, ConfigError> {
        let from = parse_from(&config.from)?;
        let public_url = parse_public_url(&config.public_url)?;
        check_retry(config.retry)?;
        let (sender, description) = match &config.transport {
            Transport::File { dir } => {
                prepare_dir(dir)?;
                tracing::info!(dir = %dir.display(), "mail is written to .eml files");
                (
                    Sender::File(FileTransport::new(dir), dir.clone()),
                    format!("files in {}", dir.display()),
                )
            }
            Transport::Smtp {
                url,
                tls,
                username,
                password,
            } => {
                let relay = SmtpRelay::parse(url, *tls, username.as_deref(), password.as_deref())?;
                if relay.credentials.is_some() && relay.tls == SmtpTls::None {
                    tracing::warn!(
                        relay = %relay,
                        "the SMTP password is sent without TLS: anyone on the way can read it"
                    );
                }
                tracing::info!(relay = %relay, "mail is sent through an SMTP relay");
                (
                    Sender::Smtp(smtp_transport(&relay)?),
                    format!("SMTP relay {relay}"),
                )
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            sender,
            retry: config.retry,
        };
        let thread = thread::Builder::new()
            .name("chatbot-mail".to_owned())
            .spawn(move || worker.run())
            .map_err(ConfigError::Thread)?;
        Ok(Self {
            shared,
            from,
            public_url,
            description,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops taking mail (what is sent from now on is dropped, with a warning), keeps
    /// sending what is queued, retries included, for at most `grace`, and returns the
    /// number of mails not sent by then, which are lost (logged at ERROR when there are
    /// any). A mail being handed to the relay at that moment counts as not sent, though
    /// it may still arrive. Closing again returns 0 at once.
    pub fn close(&self, grace: Duration) -> usize {
        let deadline = Instant::now().checked_add(grace);
        let mut state = self.shared.lock();
        if state.abandoned {
            return 0;
        }
        if !state.closing {
            state.closing = true;
            let queued = state.queue.len() + usize::from(state.in_flight);
            tracing::info!(queued, ?grace, "mailer closing: sending what is queued");
            self.shared.changed.notify_all();
        }
        while !state.finished {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.finished {
            state.abandoned = true;
            drop(state);
            self.join();
            tracing::info!("mailer closed: every queued mail was sent");
            return 0;
        }
        let unsent = state.queue.len() + usize::from(state.in_flight);
        state.queue.clear();
        state.abandoned = true;
        self.shared.changed.notify_all();
        drop(state);
        tracing::error!(
            unsent,
            ?grace,
            "mailer closed with mail not sent: it is lost (the users can ask for another mail)"
        );
        unsent
    }

    fn join(&self) {
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("the mail thread panicked");
            }
        }
    }

    fn build(&self, mail: &AccountMail) -> Result<Message, String> {
        let address: Address = mail
            .to
            .as_str()
            .parse()
            .map_err(|error| format!("the recipient is not an address: {error}"))?;
        let composed = compose(mail, &self.public_url);
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(
                Some(mail.display_name.as_str().to_owned()),
                address,
            ))
            .subject(composed.subject)
            // `<random@this host>`: relays do not always add one, and spam filters
            // frown on mail without it.
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                composed.text,
                composed.html,
            ))
            .map_err(|error| error.to_string())
    }
}

impl Mailer for LettreMailer {
    fn send(&self, mail: AccountMail) {
        let purpose = mail.purpose.as_str();
        let domain = domain_of(mail.to.as_str()).to_owned();
        let message = match self.build(&mail) {
            Ok(message) => message,
            Err(reason) => {
                let reason = blot(&reason, mail.to.as_str());
                tracing::error!(%purpose, %domain, %reason, "mail could not be written; dropped");
                return;
            }
        };
        let mut state = self.shared.lock();
        if state.closing {
            drop(state);
            tracing::warn!(%purpose, %domain, "mail dropped: the mailer is closing");
            return;
        }
        state.queue.push_back(Job {
            purpose: mail.purpose,
            address: mail.to.as_str().to_owned(),
            domain,
            message,
        });
        self.shared.changed.notify_all();
    }
}

impl Drop for LettreMailer {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.abandoned {
            return;
        }
        let unsent = state.queue.len() + usize::from(state.in_flight);
        state.queue.clear();
        state.abandoned = true;
        self.shared.changed.notify_all();
        drop(state);
        if unsent > 0 {
            tracing::error!(
                unsent,
                "mailer dropped without closing: mail not sent is lost"
            );
        }
    }
}

impl fmt::Debug for LettreMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("LettreMailer")
            .field("to", &self.description)
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .field("queued", &state.queue.len())
            .field("closing", &state.closing)
            .finish_non_exhaustive()
    }
}

/// The SMTP client for `relay`: a connection per mail, [`SMTP_TIMEOUT`], TLS on rustls.
fn smtp_transport(relay: &SmtpRelay) -> Result<SmtpTransport, ConfigError> {
    let parameters = || {
        TlsParameters::new(relay.host.clone()).map_err(|error| ConfigError::Tls {
            reason: error.to_string(),
        })
    };
    let tls = match relay.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::Required(parameters()?),
        SmtpTls::Tls => Tls::Wrapper(parameters()?),
    };
    let mut builder = SmtpTransport::builder_dangerous(relay.host.as_str())
        .port(relay.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((username, password)) = &relay.credentials {
        builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Where the thread sends mail.
enum Sender {
    Smtp(SmtpTransport),
    File(FileTransport, PathBuf),
}

/// Why a mail was not sent.
enum Failure {
    /// It may work later: try again.
    MayPass(String),
    /// It never will: drop the mail.
    Permanent(String),
}

impl Sender {
    fn send(&self, message: &Message) -> Result<(), Failure> {
        match self {
            Self::Smtp(transport) => transport.send(message).map(drop).map_err(|error| {
                if error.is_permanent() {
                    Failure::Permanent(error.to_string())
                } else {
                    Failure::MayPass(error.to_string())
                }
            }),
            Self::File(transport, dir) => transport.send(message).map(drop).map_err(|error| {
                Failure::MayPass(format!("writing to {}: {error}", dir.display()))
            }),
        }
    }
}

/// The mail thread.
struct Worker {
    shared: Arc<Shared>,
    sender: Sender,
    retry: Retry,
}

impl Worker {
    fn run(self) {
        while let Some(job) = self.next() {
            self.deliver(&job);
            let mut state = self.shared.lock();
            state.in_flight = false;
            self.shared.changed.notify_all();
        }
    }

    /// The next mail to send, waiting for one; `None` when the thread should stop.
    fn next(&self) -> Option<Job> {
        let mut state = self.shared.lock();
        loop {
            if state.abandoned {
                return None;
            }
            if let Some(job) = state.queue.pop_front() {
                state.in_flight = true;
                return Some(job);
            }
            if state.closing {
                state.finished = true;
                self.shared.changed.notify_all();
                return None;
            }
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Sends `job` until it is sent, refused for good, or given up on.
    fn deliver(&self, job: &Job) {
        let purpose = job.purpose.as_str();
        let domain = job.domain.as_str();
        let mut delay = self.retry.first;
        for attempt in 1_u64.. {
            let reason = match self.sender.send(&job.message) {
                Ok(()) => {
                    tracing::info!(%purpose, %domain, attempt, "mail sent");
                    return;
                }
                Err(Failure::Permanent(reason)) => {
                    let reason = blot(&reason, &job.address);
                    tracing::error!(%purpose, %domain, attempt, %reason, "mail refused; dropped");
                    return;
                }
                Err(Failure::MayPass(reason)) => blot(&reason, &job.address),
            };
            tracing::warn!(
                %purpose,
                %domain,
                attempt,
                next_delay = ?delay,
                %reason,
                "mail not sent; trying again"
            );
            if !self.pause(delay) {
                return;
            }
            delay = delay.saturating_mul(2).min(self.retry.max);
        }
    }

    /// Waits `delay`; `false` if the mailer gave up meanwhile.
    fn pause(&self, delay: Duration) -> bool {
        let until = Instant::now().checked_add(delay);
        let mut state = self.shared.lock();
        loop {
            if state.abandoned {
                return false;
            }
            let left = match until {
                Some(until) => until.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return true;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The part of `address` after the last `@`.
fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or(address, |(_, domain)| domain)
}

/// `reason` with the recipient's address (as given or in lower case) replaced by
/// `…@domain`: a relay may repeat the address in its answer.
fn blot(reason: &str, address: &str) -> String {
    let hidden = format!("…@{}", domain_of(address));
    reason
        .replace(address, &hidden)
        .replace(&address.to_ascii_lowercase(), &hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_blotted_out_of_reasons() {
        assert_eq!(domain_of("ada@example.com"), "example.com");
        assert_eq!(
            blot("550 <ada@example.com>: no such user", "Ada@Example.com"),
            "550 <…@Example.com>: no such user"
        );
        assert_eq!(
            blot("550 <Ada@Example.com> unknown", "Ada@Example.com"),
            "550 <…@Example.com> unknown"
        );
    }
}
