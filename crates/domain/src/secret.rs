//! Random secrets handed to a user (session keys, mailed tokens), and the digests
//! that are all the storage ever keeps of them.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use crate::redact::redacted_debug;

/// A token mailed to a user (to verify an email address or reset a password):
/// [`TokenPurpose`](crate::TokenPurpose) aside, whoever holds it may act on it once, so
/// its `Debug` output never shows it. Only its [digest](SecretToken::digest) is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

redacted_debug!(SecretToken);

impl SecretToken {
    /// Wraps a token a [`KeyGenerator`](crate::ports::KeyGenerator) made or a client
    /// sent back.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, for the mail that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the storage keeps of it.
    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(&self.0)
    }
}

/// The SHA-256 of a secret, in lower-case hex: what the storage keeps of a session
/// key or a mailed token, so that a copy of the database holds nothing that logs in.
///
/// A digest is enough (no slow hash like bcrypt): the secrets are at least 128 random
/// bits, which no one can guess, quickly or slowly. It can only be made from a secret
/// or read back from the storage, never mistaken for the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretDigest(String);

impl SecretDigest {
    /// The digest of `secret`.
    ///
    /// ```
    /// use chatbot_domain::SecretDigest;
    /// assert_eq!(
    ///     SecretDigest::of("abc").as_str(),
    ///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    /// );
    /// ```
    pub fn of(secret: &str) -> Self {
        let hash = Sha256::digest(secret.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in hash {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex)
    }

    /// A digest as the storage kept it.
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The digest in hex, for storage lookups.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_64_hex_digits_and_differs_from_the_secret() {
        let token = SecretToken::new("s3cret-token");
        let digest = token.digest();
        assert_eq!(digest.as_str().len(), 64);
        assert!(digest.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(digest.as_str(), token.expose());
        assert_eq!(digest, SecretDigest::of("s3cret-token"));
        assert_ne!(digest, SecretDigest::of("s3cret-tokeN"));
    }

    #[test]
    fn a_token_is_redacted_in_debug_output() {
        assert_eq!(
            format!("{:?}", SecretToken::new("s3cret")),
            "SecretToken([redacted])"
        );
    }
}
