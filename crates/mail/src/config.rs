//! The mailer's settings as plain values, and their validation.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use percent_encoding::percent_decode_str;
use url::{Host, Url};

/// Everything the mailer needs; the server crate maps its settings onto it.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Where mail goes: files or an SMTP relay.
    pub transport: Transport,
    /// The sender, a mailbox such as `Chatbot <noreply@localhost>` or
    /// `noreply@example.com`.
    pub from: String,
    /// Where the web client is served, such as `http://localhost:5000`: links are
    /// `{public_url}/verify?token=…` and `{public_url}/reset?token=…`.
    pub public_url: String,
    /// How long to wait before sending again a mail that failed for a reason that may
    /// pass; [`Retry::default`] is 1 second doubling up to 5 minutes.
    pub retry: Retry,
}

/// Where mail goes.
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    /// One `.eml` file per mail in `dir` (made if it is missing): for development, or to
    /// hand the files to another program.
    File {
        /// The directory of the files.
        dir: PathBuf,
    },
    /// An SMTP relay.
    Smtp {
        /// `smtp://[user:password@]host[:port]`; the user name and password are
        /// percent-decoded. Without a port: 25 with [`SmtpTls::None`], 587 with
        /// [`SmtpTls::StartTls`], 465 with [`SmtpTls::Tls`].
        url: String,
        /// How the connection is protected.
        tls: SmtpTls,
        /// The user name to log in with; when given it wins over the URL's.
        username: Option<String>,
        /// The password to log in with; when given it wins over the URL's.
        password: Option<String>,
    },
}

/// How the connection to the SMTP relay is protected. The relay's certificate is
/// checked with the operating system's verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same machine or network (a password sent
    /// this way can be read on the way; a warning is logged).
    None,
    /// Plain text upgraded with `STARTTLS`, which the relay must offer (usually port
    /// 587).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// The delays between attempts to send a mail that failed for a reason that may pass
/// (the relay down or slow, an SMTP 4xx answer): `first`, then doubling up to `max`,
/// until the mail is sent or its link expires. Each mail has its own delays: the other
/// mails go on meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The delay after the first failure; more than zero.
    pub first: Duration,
    /// The longest delay; at least `first`.
    pub max: Duration,
}

impl Default for Retry {
    /// 1 second, doubling up to 5 minutes: the server's defaults (`mail.retry_first_ms`,
    /// `mail.retry_max_ms`).
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(5 * 60),
        }
    }
}

/// A [`MailConfig`] that cannot work, saying what to fix. No message holds a password.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The SMTP URL is malformed or not an `smtp://` URL.
    #[error("the SMTP URL is not valid: {reason}; write it as smtp://[user:password@]host[:port]")]
    SmtpUrl {
        /// What is wrong with it (never the URL, which may hold a password).
        reason: String,
    },
    /// A password was given without a user name.
    #[error(
        "the SMTP password has no user name to go with it: give one in the URL \
         (smtp://user@host) or as the username"
    )]
    PasswordWithoutUser,
    /// A user name was given without a password.
    #[error(
        "the SMTP user name has no password to go with it: give one in the URL \
         (smtp://user:password@host) or as the password"
    )]
    UserWithoutPassword,
    /// The sender is not a mailbox.
    #[error(
        "the sender {from:?} is not a mailbox ({reason}); write it as \
         \"Chatbot <noreply@example.com>\" or noreply@example.com"
    )]
    From {
        /// The sender as given.
        from: String,
        /// Why it was refused.
        reason: String,
    },
    /// The public URL is not an `http(s)` URL.
    #[error(
        "the public URL {url:?} is not valid ({reason}); write it as \
         http(s)://host[:port][/path], the address the web client is served at"
    )]
    PublicUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The retry delays are out of order.
    #[error(
        "the retry delays are not valid (first {first:?}, max {max:?}): the first must be \
         more than zero and at most the longest"
    )]
    Retry {
        /// The first delay given.
        first: Duration,
        /// The longest delay given.
        max: Duration,
    },
    /// TLS for the relay could not be set up (no certificate verifier on this system).
    #[error("TLS to the SMTP relay cannot be set up: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },
    /// The mail thread could not be started.
    #[error("the mail thread cannot be started: {0}")]
    Thread(#[source] io::Error),
}

impl fmt::Debug for Transport {
    /// Never shows the credentials: the URL is shown without its user name and
    /// password, and the keys only as given or not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            Self::Smtp {
                url,
                tls,
                username,
                password,
            } => f
                .debug_struct("Smtp")
                .field("url", &redact_url(url))
                .field("tls", tls)
                .field("username", &username.as_ref().map(|_| Redacted))
                .field("password", &password.as_ref().map(|_| Redacted))
                .finish(),
        }
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The URL without its user information, or a placeholder if it cannot be parsed (it
/// may still hold a password).
fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => {
            let credentials = if url.username().is_empty() && url.password().is_none() {
                ""
            } else {
                "[redacted]@"
            };
            let host = url.host_str().unwrap_or("");
            let port = url
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default();
            format!("{}://{credentials}{host}{port}", url.scheme())
        }
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

/// An SMTP relay, checked.
#[derive(Clone)]
pub(crate) struct SmtpRelay {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: SmtpTls,
    pub(crate) credentials: Option<(String, String)>,
}

impl fmt::Display for SmtpRelay {
    /// `host:port (tls)`, for logs; never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.tls {
            SmtpTls::None => "no TLS",
            SmtpTls::StartTls => "STARTTLS",
            SmtpTls::Tls => "TLS",
        };
        let login = if self.credentials.is_some() {
            ", logging in"
        } else {
            ""
        };
        if self.host.contains(':') {
            write!(f, "[{}]:{} ({tls}{login})", self.host, self.port)
        } else {
            write!(f, "{}:{} ({tls}{login})", self.host, self.port)
        }
    }
}

impl fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpRelay({self})")
    }
}

impl SmtpRelay {
    pub(crate) fn parse(
        raw: &str,
        tls: SmtpTls,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::SmtpUrl {
            reason: reason.to_owned(),
        };
        let url = Url::parse(raw.trim()).map_err(|error| invalid(&error.to_string()))?;
        match url.scheme() {
            "smtp" => {}
            "smtps" => {
                return Err(invalid(
                    "smtps:// is not taken: use smtp:// and choose TLS with the tls setting",
                ));
            }
            _ => return Err(invalid("the scheme is not smtp://")),
        }
        let host = match url.host() {
            Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(Host::Ipv4(address)) => address.to_string(),
            Some(Host::Ipv6(address)) => address.to_string(),
            _ => return Err(invalid("it names no host")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it has a path, query or fragment after the host"));
        }
        let port = url.port().unwrap_or(match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        });
        let decode = |part: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| invalid("its user name or password is not UTF-8 once decoded"))
        };
        let url_user = Some(decode(url.username())?).filter(|user| !user.is_empty());
        let url_password = url.password().map(decode).transpose()?;
        let username = username.map(str::to_owned).or(url_user);
        let password = password.map(str::to_owned).or(url_password);
        let credentials = match (username, password) {
            (None, None) => None,
            (Some(username), Some(password)) => Some((username, password)),
            (None, Some(_)) => return Err(ConfigError::PasswordWithoutUser),
            (Some(_), None) => return Err(ConfigError::UserWithoutPassword),
        };
        Ok(Self {
            host,
            port,
            tls,
            credentials,
        })
    }
}

/// The sender, checked.
pub(crate) fn parse_from(from: &str) -> Result<Mailbox, ConfigError> {
    from.trim()
        .parse::<Mailbox>()
        .map_err(|error| ConfigError::From {
            from: from.to_owned(),
            reason: error.to_string(),
        })
}

/// The public URL, checked, without a trailing slash.
pub(crate) fn parse_public_url(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::PublicUrl {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme is not http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it has a user name or password"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Makes `dir` if it is missing and checks that a file can be written in it.
pub(crate) fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".chatbot-mail-probe-{}", std::process::id()));
    fs::write(&probe, b"")?;
    fs::remove_file(&probe)
}

/// Checks that the delays are in order.
pub(crate) fn check_retry(retry: Retry) -> Result<(), ConfigError> {
    if retry.first.is_zero() || retry.max < retry.first {
        return Err(ConfigError::Retry {
            first: retry.first,
            max: retry.max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(url: &str) -> Result<SmtpRelay, ConfigError> {
        SmtpRelay::parse(url, SmtpTls::None, None, None)
    }

    #[test]
    fn smtp_urls_give_host_port_and_credentials() {
        let plain = relay("smtp://127.0.0.1:1025").unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 1025));
        assert!(plain.credentials.is_none());
        assert_eq!(plain.to_string(), "127.0.0.1:1025 (no TLS)");

        let with_user = relay("smtp://ada%40example.com:p%40ss%3Aw@mail.example.com/").unwrap();
        assert_eq!(with_user.host, "mail.example.com");
        assert_eq!(with_user.port, 25);
        assert_eq!(
            with_user.credentials,
            Some(("ada@example.com".to_owned(), "p@ss:w".to_owned()))
        );
        assert!(!with_user.to_string().contains("p@ss"));

        let v6 = SmtpRelay::parse("smtp://[::1]", SmtpTls::Tls, None, None).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 465));
        assert_eq!(v6.to_string(), "[::1]:465 (TLS)");
        let starttls = SmtpRelay::parse("smtp://relay", SmtpTls::StartTls, None, None).unwrap();
        assert_eq!(starttls.port, 587);
    }

    #[test]
    fn credential_keys_win_over_the_url() {
        let keys = SmtpRelay::parse(
            "smtp://url-user:url-pass@relay",
            SmtpTls::StartTls,
            Some("key-user"),
            Some("key-pass"),
        )
        .unwrap();
        assert_eq!(
            keys.credentials,
            Some(("key-user".to_owned(), "key-pass".to_owned()))
        );
        // A user in the URL and the password as a key (from a secret).
        let mixed =
            SmtpRelay::parse("smtp://ada@relay", SmtpTls::StartTls, None, Some("secret")).unwrap();
        assert_eq!(
            mixed.credentials,
            Some(("ada".to_owned(), "secret".to_owned()))
        );
        assert!(matches!(
            SmtpRelay::parse("smtp://relay", SmtpTls::None, None, Some("secret")),
            Err(ConfigError::PasswordWithoutUser)
        ));
        assert!(matches!(
            SmtpRelay::parse("smtp://ada@relay", SmtpTls::None, None, None),
            Err(ConfigError::UserWithoutPassword)
        ));
    }

    #[test]
    fn bad_smtp_urls_say_what_to_fix_without_the_password() {
        for bad in [
            "127.0.0.1:1025",
            "http://relay",
            "smtps://relay",
            "smtp://",
            "smtp://relay/path",
            "smtp://relay?tls=required",
            "smtp://user:hunter2@relay:99999",
        ] {
            let message = relay(bad).unwrap_err().to_string();
            assert!(
                message.contains("smtp://[user:password@]host[:port]"),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn debug_output_shows_no_credentials() {
        let transport = Transport::Smtp {
            url: "smtp://ada:hunter2@relay:2525".to_owned(),
            tls: SmtpTls::StartTls,
            username: Some("grace".to_owned()),
            password: Some("swordfish".to_owned()),
        };
        let debug = format!("{transport:?}");
        assert_eq!(
            debug,
            "Smtp { url: \"smtp://[redacted]@relay:2525\", tls: StartTls, \
             username: Some([redacted]), password: Some([redacted]) }"
        );
        let unparsable = Transport::Smtp {
            url: "ada:hunter2@relay".to_owned(),
            tls: SmtpTls::None,
            username: None,
            password: None,
        };
        assert!(!format!("{unparsable:?}").contains("hunter2"));
    }

    #[test]
    fn senders_and_public_urls_are_checked() {
        assert_eq!(
            parse_from("Chatbot <noreply@localhost>")
                .unwrap()
                .to_string(),
            "Chatbot <noreply@localhost>"
        );
        assert!(parse_from("noreply@example.com").is_ok());
        let bad = parse_from("Chatbot").unwrap_err().to_string();
        assert!(bad.contains("\"Chatbot <noreply@example.com>\""), "{bad}");

        assert_eq!(
            parse_public_url("http://localhost:5000").unwrap(),
            "http://localhost:5000"
        );
        assert_eq!(
            parse_public_url("https://example.com/chat/").unwrap(),
            "https://example.com/chat"
        );
        for bad in [
            "localhost:5000",
            "ftp://example.com",
            "http://x/?a=b",
            "/relative",
        ] {
            let message = parse_public_url(bad).unwrap_err().to_string();
            assert!(message.contains("http(s)://host"), "{message}");
        }
    }

    #[test]
    fn retry_delays_must_be_in_order() {
        assert_eq!(
            Retry::default(),
            Retry {
                first: Duration::from_secs(1),
                max: Duration::from_secs(5 * 60),
            }
        );
        assert!(check_retry(Retry::default()).is_ok());
        let zero = Retry {
            first: Duration::ZERO,
            max: Duration::from_secs(1),
        };
        assert!(check_retry(zero).is_err());
        let reversed = Retry {
            first: Duration::from_secs(2),
            max: Duration::from_secs(1),
        };
        assert!(check_retry(reversed).is_err());
    }
}
