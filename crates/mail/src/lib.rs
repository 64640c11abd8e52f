#![warn(missing_docs)]
//! The domain's [`Mailer`](chatbot_domain::ports::Mailer) port on
//! [lettre](https://lettre.rs): the account mails (verify an email address, reset a
//! password) written as `multipart/alternative` (plain text and HTML) and sent over
//! SMTP or written as `.eml` files.
//!
//! [`LettreMailer::new`] takes a [`MailConfig`] of plain values (the server crate maps
//! its settings onto it) and checks it: a [`ConfigError`] says what to fix. Each mail
//! greets the user by their display name, carries a link to the web client
//! (`{public_url}/verify?token=…` or `{public_url}/reset?token=…`), says how long the
//! link works and to ignore the mail if they did not ask for it.
//!
//! Sending is off the request: [`send`](chatbot_domain::ports::Mailer::send) queues
//! the mail in memory and returns; a thread of the crate's own, `chatbot-mail`, sends
//! new mail in order. A mail that fails for a reason that may pass goes back in the
//! queue with a growing delay of its own ([`Retry`]: 1 second, doubling up to 5 minutes
//! by default) while the mails behind it go on; a mail still not sent when its link
//! expires is dropped, and so is mail a relay refuses for good (see [`LettreMailer`]).
//! The queue holds at most [`MAX_QUEUED`] (10,000) mails: past that, new mail is dropped
//! with an ERROR line (the rate limits on the routes that send mail keep it far from
//! that; the cap bounds memory). [`LettreMailer::close`] gives the queue a grace period
//! at shutdown; what is still queued after it is lost.
//!
//! Why lettre's *blocking* transports on a thread rather than its async ones: mail is
//! rare, sent one at a time and never awaited by anyone, so a plain thread costs less
//! than tying the crate to an async runtime (lettre's tokio feature, its pool), and the
//! domain's port is synchronous anyway. The thread waits on a condition variable when
//! idle; a dead relay holds it for at most [`SMTP_TIMEOUT`] per attempt. TLS is rustls
//! on ring with the operating system's verifier, as in the rest of the workspace: no
//! OpenSSL.
//!
//! Credentials never appear in `Debug` output, errors or logs; tokens and links never
//! appear in logs, and recipients only by their domain.
//!
//! With the `test-support` feature, the `testing` module runs a real SMTP server
//! (aiosmtpd) and reads the mail it received.

mod compose;
mod config;
mod mailer;
mod schedule;
#[cfg(feature = "test-support")]
pub mod testing;

pub use config::{ConfigError, MailConfig, Retry, SmtpTls, Transport};
pub use mailer::{LettreMailer, SMTP_TIMEOUT};
pub use schedule::MAX_QUEUED;
