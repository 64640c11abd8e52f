//! The mailer: a queue in memory and the thread that empties it.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chatbot_domain::AccountMail;
use chatbot_domain::ports::Mailer;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, FileTransport, Message, SmtpTransport, Transport as _};

use crate::compose::compose;
use crate::config::{
    ConfigError, MailConfig, SmtpRelay, SmtpTls, Transport, check_retry, parse_from,
    parse_public_url, prepare_dir,
};
use crate::schedule::{MAX_QUEUED, Next, Schedule, Scheduled, Step};

/// How long the SMTP client waits to connect to the relay, and for each answer: short,
/// so that a dead relay holds the mail thread for seconds, not minutes.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Mailer`] port on lettre: mail is composed at once, queued in memory and sent by
/// a thread of its own (`chatbot-mail`), over SMTP or as `.eml` files.
///
/// [`send`](Mailer::send) never blocks and never fails. New mail is sent in the order
/// it was queued. A mail that fails for a reason that may pass (the relay refuses the
/// connection or times out, an SMTP 4xx answer such as a greylisting 451, a file that
/// cannot be written) goes back in the queue with a backoff of its own: it is tried
/// again after [`Retry::first`](crate::Retry::first), then after twice as long each time
/// up to [`Retry::max`](crate::Retry::max); meanwhile the thread sends whichever mail is
/// due next, so one recipient that keeps failing does not hold up the others. Each
/// failed attempt is logged at WARN. A mail still not sent when its link expires
/// ([`TokenPurpose::lifetime`](chatbot_domain::TokenPurpose::lifetime) after it was
/// queued: 24 hours to verify an address, 30 minutes to reset a password) is useless: it
/// is dropped with a WARN line (its purpose, the recipient's domain, the attempts made).
/// A mail the relay refuses for good (an SMTP 5xx answer) is logged at ERROR and
/// dropped. A mail sent is logged at INFO with its purpose and the recipient's domain.
/// No log holds a token, a link or the recipient's full address.
///
/// **The queue is bounded**: it holds at most [`MAX_QUEUED`] (10,000) mails, the one
/// being sent included; past that `send` drops the new mail with an ERROR line. The
/// rate limits on the routes that send mail keep it far from full; the cap only bounds
/// the memory a relay down for hours could take.
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

struct State {
    /// Mail waiting or being sent, each with its next attempt.
    queue: Schedule<Job>,
    /// Whether `close` was called: no more mail is taken.
    closing: bool,
    /// Set by the thread once closing and nothing is left.
    finished: bool,
    /// Set when the mailer gives up on what is left: the thread stops.
    abandoned: bool,
}

/// A mail ready to go.
struct Job {
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
                // Mail is never worth not serving: on a disk that takes no writes (a
                // read-only volume, a full disk) the service starts, and each mail is
                // tried again until its link expires.
                if let Err(error) = prepare_dir(dir) {
                    tracing::warn!(
                        dir = %dir.display(),
                        %error,
                        "mail files cannot be written there now; make it a directory this process can write to"
                    );
                }
                tracing::info!(dir = %dir.display(), "mail is written to .eml files");
                (
                    Sender::File {
                        writer: FileTransport::new(partial_dir(dir)),
                        dir: dir.clone(),
                    },
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
            state: Mutex::new(State {
                queue: Schedule::new(config.retry, MAX_QUEUED),
                closing: false,
                finished: false,
                abandoned: false,
            }),
            changed: Condvar::new(),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            sender,
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
    /// any). Mail whose link expires meanwhile is dropped as always, and not counted. A
    /// mail being handed to the relay at that moment counts as not sent, though it may
    /// still arrive. Closing again returns 0 at once.
    pub fn close(&self, grace: Duration) -> usize {
        let deadline = Instant::now().checked_add(grace);
        let mut state = self.shared.lock();
        if state.abandoned {
            return 0;
        }
        if !state.closing {
            state.closing = true;
            let queued = state.queue.len();
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
            tracing::info!("mailer closed: the queue is empty");
            return 0;
        }
        let unsent = state.queue.clear();
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
        let job = Job {
            address: mail.to.as_str().to_owned(),
            domain,
            message,
        };
        // The time is read under the lock, so that mail is due in the order it is queued.
        if let Err(job) = state.queue.push(job, mail.purpose, Instant::now()) {
            drop(state);
            let domain = job.domain;
            tracing::error!(
                %purpose,
                %domain,
                max_queued = MAX_QUEUED,
                "mail dropped: the mail queue is full"
            );
            return;
        }
        self.shared.changed.notify_all();
    }
}

impl Drop for LettreMailer {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.abandoned {
            return;
        }
        let unsent = state.queue.clear();
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
    /// Files in `dir`, each written in its `.partial` folder first and then moved in
    /// whole, so that whoever reads the folder never finds half a mail.
    File {
        writer: FileTransport,
        dir: PathBuf,
    },
}

/// Where mail files are written before they are moved into `dir`: inside it, so the
/// move is a rename on the same file system.
fn partial_dir(dir: &std::path::Path) -> PathBuf {
    dir.join(".partial")
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
            Self::File { writer, dir } => {
                let failed = |error: &dyn std::fmt::Display| {
                    Failure::MayPass(format!("writing to {}: {error}", dir.display()))
                };
                let partial = partial_dir(dir);
                std::fs::create_dir_all(&partial).map_err(|error| failed(&error))?;
                let id = writer.send(message).map_err(|error| failed(&error))?;
                let name = format!("{id}.eml");
                std::fs::rename(partial.join(&name), dir.join(&name))
                    .map_err(|error| failed(&error))
            }
        }
    }
}

/// The mail thread.
struct Worker {
    shared: Arc<Shared>,
    sender: Sender,
}

impl Worker {
    fn run(self) {
        while let Some(job) = self.next() {
            self.deliver(job);
        }
    }

    /// The next mail to send, waiting until one is due (and dropping the mails whose
    /// link expired meanwhile); `None` when the thread should stop.
    fn next(&self) -> Option<Scheduled<Job>> {
        let mut state = self.shared.lock();
        loop {
            if state.abandoned {
                return None;
            }
            let now = Instant::now();
            let Step { expired, next } = state.queue.next(now);
            if let Next::Due(job) = next {
                drop(state);
                log_expired(&expired, now);
                return Some(job);
            }
            if !expired.is_empty() {
                // Log without the lock, then look again.
                drop(state);
                log_expired(&expired, now);
                state = self.shared.lock();
                continue;
            }
            state = match next {
                Next::WaitUntil(due) => {
                    self.shared
                        .changed
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                _ if state.closing => {
                    state.finished = true;
                    self.shared.changed.notify_all();
                    return None;
                }
                _ => self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    /// Tries `job` once: it is sent, refused for good, or back in the queue with its
    /// next attempt later.
    fn deliver(&self, job: Scheduled<Job>) {
        let purpose = job.purpose().as_str();
        let attempt = job.failures().saturating_add(1);
        let outcome = self.sender.send(&job.payload.message);
        let domain = job.payload.domain.clone();
        let reason = match outcome {
            Ok(()) => {
                self.done();
                tracing::info!(%purpose, %domain, attempt, "mail sent");
                return;
            }
            Err(Failure::Permanent(reason)) => {
                self.done();
                let reason = blot(&reason, &job.payload.address);
                tracing::error!(%purpose, %domain, attempt, %reason, "mail refused; dropped");
                return;
            }
            Err(Failure::MayPass(reason)) => blot(&reason, &job.payload.address),
        };
        let mut state = self.shared.lock();
        if state.abandoned {
            // The mailer gave up on it (and counted it as lost).
            return;
        }
        let next_delay = state.queue.retry(job, Instant::now());
        self.shared.changed.notify_all();
        drop(state);
        tracing::warn!(
            %purpose,
            %domain,
            attempt,
            ?next_delay,
            %reason,
            "mail not sent; trying again"
        );
    }

    /// The mail in flight is sent or dropped.
    fn done(&self) {
        let mut state = self.shared.lock();
        if !state.abandoned {
            state.queue.done();
        }
        self.shared.changed.notify_all();
    }
}

/// Logs the mails dropped because their link expired (at WARN: useless now, the user
/// asks for another).
fn log_expired(expired: &[Scheduled<Job>], now: Instant) {
    for job in expired {
        let purpose = job.purpose().as_str();
        let domain = job.payload.domain.as_str();
        let attempts = job.failures();
        let age = job.age(now);
        tracing::warn!(
            %purpose,
            %domain,
            attempts,
            ?age,
            "mail dropped: its link expired before it could be sent"
        );
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
