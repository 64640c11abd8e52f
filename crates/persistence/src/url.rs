//! Which database a URL names.

use std::fmt;
use std::path::PathBuf;

/// A database the adapter can open, parsed from a URL.
///
/// - `sqlite://relative/path.db` and `sqlite:///absolute/path.db`: a SQLite file,
///   created with its folder on first use;
/// - `postgres://…` and `postgresql://…`: a PostgreSQL server (libpq syntax).
///
/// An in-memory SQLite database is refused: a pool would give every connection its
/// own empty database.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// A database URL the adapter cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL has no `scheme://`.
    #[error("database URL has no scheme: use sqlite://path/to/file.db or postgres://user@host/db")]
    MissingScheme,
    /// The scheme is not one the adapter speaks.
    #[error("database URL scheme {0:?} is not supported: use sqlite:// or postgres://")]
    UnsupportedScheme(String),
    /// A SQLite URL without a file path.
    #[error(
        "SQLite URL has no file path: use sqlite://data/chatbot.db or sqlite:///absolute/path.db"
    )]
    MissingPath,
    /// An in-memory SQLite URL.
    #[error(
        "in-memory SQLite cannot be shared by a connection pool: use a file, e.g. sqlite://data/chatbot.db"
    )]
    InMemory,
}

impl DatabaseUrl {
    /// Parses `url`.
    ///
    /// ```
    /// use chatbot_persistence::DatabaseUrl;
    /// use std::path::PathBuf;
    /// assert_eq!(
    ///     DatabaseUrl::parse("sqlite://data/chatbot.db"),
    ///     Ok(DatabaseUrl::Sqlite(PathBuf::from("data/chatbot.db")))
    /// );
    /// assert_eq!(
    ///     DatabaseUrl::parse("sqlite:///var/lib/chatbot.db"),
    ///     Ok(DatabaseUrl::Sqlite(PathBuf::from("/var/lib/chatbot.db")))
    /// );
    /// assert!(DatabaseUrl::parse("mysql://localhost/chat").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::MissingScheme);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => match rest {
                "" => Err(UrlError::MissingPath),
                _ if rest.contains(":memory:") || rest.contains("mode=memory") => {
                    Err(UrlError::InMemory)
                }
                path => Ok(Self::Sqlite(PathBuf::from(path))),
            },
            "postgres" | "postgresql" => Ok(Self::Postgres(url.to_owned())),
            other => Err(UrlError::UnsupportedScheme(other.to_owned())),
        }
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Self::parse(url)
    }
}

/// Shows the URL with any password replaced by `***`, so it can be logged.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:secret@host/…?password=secret` becomes
/// `scheme://user:***@host/…?password=***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => path.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_postgres_schemes() {
        for url in ["postgres://u@localhost/db", "postgresql://u@localhost/db"] {
            assert_eq!(
                DatabaseUrl::parse(url),
                Ok(DatabaseUrl::Postgres(url.into()))
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        assert_eq!(DatabaseUrl::parse("sqlite://"), Err(UrlError::MissingPath));
        assert_eq!(
            DatabaseUrl::parse("sqlite://:memory:"),
            Err(UrlError::InMemory)
        );
        assert_eq!(
            DatabaseUrl::parse("postgres:/u:pw@h/db"),
            Err(UrlError::MissingScheme)
        );
        assert!(!UrlError::MissingScheme.to_string().contains("pw"));
        assert_eq!(
            DatabaseUrl::parse("mysql://localhost/db"),
            Err(UrlError::UnsupportedScheme("mysql".into()))
        );
    }

    #[test]
    fn display_hides_the_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cr3t@db:5432/chat?sslmode=require").unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/chat?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cr3t"));
        let url = DatabaseUrl::parse("postgres://app@db/chat").unwrap();
        assert_eq!(url.to_string(), "postgres://app@db/chat");
        let url = DatabaseUrl::parse("postgres://db/chat?user=app&password=s3cr3t").unwrap();
        assert_eq!(url.to_string(), "postgres://db/chat?user=app&password=***");
    }
}
