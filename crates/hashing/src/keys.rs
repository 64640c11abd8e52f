//! Random session keys and mailed tokens.

use chatbot_domain::ports::KeyGenerator;
use chatbot_domain::{SecretToken, SessionKey};
use rand::Rng;
use rand::distr::Alphanumeric;

/// Secrets of letters and digits from the operating system's cryptographically
/// secure generator: session keys of 64 characters (about 381 random bits, as OWASP
/// asks for at least 64) and mailed tokens of 43 (about 256 bits, as SPEC asks for at
/// least 128), which need no escaping in a URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomKeys;

impl RandomKeys {
    /// Characters in a session key.
    pub const LENGTH: usize = 64;
    /// Characters in a mailed token.
    pub const TOKEN_LENGTH: usize = 43;

    fn random(length: usize) -> String {
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(length)
            .map(char::from)
            .collect()
    }
}

impl KeyGenerator for RandomKeys {
    fn session_key(&self) -> SessionKey {
        SessionKey::new(Self::random(Self::LENGTH))
    }

    fn secret_token(&self) -> SecretToken {
        SecretToken::new(Self::random(Self::TOKEN_LENGTH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_letters_and_digits_and_differ() {
        let first = RandomKeys.session_key();
        let second = RandomKeys.session_key();
        assert_eq!(first.as_str().len(), RandomKeys::LENGTH);
        assert!(first.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }

    #[test]
    fn tokens_are_43_letters_and_digits_and_differ() {
        let first = RandomKeys.secret_token();
        let second = RandomKeys.secret_token();
        assert_eq!(first.expose().len(), RandomKeys::TOKEN_LENGTH);
        assert!(first.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }
}
