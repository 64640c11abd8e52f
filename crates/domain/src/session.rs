//! Server-side sessions: what a session cookie stands for.

use crate::redact::redacted_debug;
use crate::{Timestamp, UserId};

/// The opaque key a session cookie carries. Whoever holds it holds the session, so its
/// `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

redacted_debug!(SessionKey);

impl SessionKey {
    /// Wraps a key the session layer generated or received in a cookie.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key, for storage lookups.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The key its cookie carries.
    pub key: SessionKey,
    /// The user logged in with it, if any; the session ends with the user's account.
    pub user: Option<UserId>,
    /// The session layer's own state, serialized; opaque to the domain.
    pub state: String,
    /// When it ends unless renewed.
    pub expires_at: Timestamp,
}
