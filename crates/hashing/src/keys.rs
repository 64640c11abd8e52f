//! Random session keys.

use chatbot_domain::SessionKey;
use chatbot_domain::ports::KeyGenerator;
use rand::Rng;
use rand::distr::Alphanumeric;

/// Session keys of 64 letters and digits from the operating system's
/// cryptographically secure generator: about 381 random bits, as OWASP asks for at
/// least 64.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomKeys;

impl RandomKeys {
    /// Characters in a key.
    pub const LENGTH: usize = 64;
}

impl KeyGenerator for RandomKeys {
    fn session_key(&self) -> SessionKey {
        let key: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(Self::LENGTH)
            .map(char::from)
            .collect();
        SessionKey::new(key)
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
}
