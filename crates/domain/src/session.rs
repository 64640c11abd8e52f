//! Server-side sessions: what a session cookie stands for.

use crate::redact::redacted_debug;
use crate::{SecretDigest, SessionId, Timestamp, UserId};

/// The opaque key a session cookie carries. Whoever holds it holds the session, so its
/// `Debug` output never shows it, and the storage keeps only its
/// [digest](SessionKey::digest).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

redacted_debug!(SessionKey);

impl SessionKey {
    /// Wraps a key the session layer generated or received in a cookie.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key, for the cookie.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the storage keeps of it, and finds the session by.
    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(&self.0)
    }
}

/// The most characters of a client's `User-Agent` a session keeps.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// A session about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The digest of its key.
    pub digest: SecretDigest,
    /// The user logged in with it, if any; the session ends with the user's account.
    pub user: Option<UserId>,
    /// The session layer's own state, serialized; opaque to the domain.
    pub state: String,
    /// What the client said it was, at most [`MAX_USER_AGENT_CHARS`] characters.
    pub user_agent: Option<String>,
    /// When it started.
    pub created_at: Timestamp,
    /// When it ends unless renewed.
    pub expires_at: Timestamp,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its public handle.
    pub id: SessionId,
    /// The user logged in with it, if any; the session ends with the user's account.
    pub user: Option<UserId>,
    /// The session layer's own state, serialized; opaque to the domain.
    pub state: String,
    /// What the client said it was when the session started.
    pub user_agent: Option<String>,
    /// When it started.
    pub created_at: Timestamp,
    /// When it was last renewed by a use: its last use, give or take the renewal
    /// interval (a minute at most).
    pub last_seen_at: Timestamp,
    /// When it ends unless renewed.
    pub expires_at: Timestamp,
}

/// A new user and state for a stored session, renewed at `seen_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    /// The user logged in with it from now on, if any.
    pub user: Option<UserId>,
    /// The session layer's new state.
    pub state: String,
    /// When it was used.
    pub seen_at: Timestamp,
    /// When it ends unless renewed again.
    pub expires_at: Timestamp,
}

/// Cuts a client's `User-Agent` to what a session keeps.
pub fn clip_user_agent(user_agent: &str) -> String {
    user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect()
}
