//! Users, and the names and passwords they sign up and log in with.

use std::fmt;

use crate::redact::redacted_debug;
use crate::validation::{Field, Rule, ValidationError, check_length};
use crate::{Timestamp, UserId};

/// A valid login name: [`Username::MIN_CHARS`] to [`Username::MAX_CHARS`] characters
/// that [`Username::allows`]: `A-Z a-z 0-9 _ . -`.
///
/// Kept as typed at signup; two names that differ only in letter case belong to the
/// same account, see [`Username::normalized`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Fewest characters of a username.
    pub const MIN_CHARS: usize = 3;
    /// Most characters of a username.
    pub const MAX_CHARS: usize = 32;
    /// The characters [`Username::allows`], in words, as error messages say them.
    pub const ALLOWED: &'static str = "letters, digits, '_', '.' and '-'";

    /// Whether a username may hold `c`: an ASCII letter or digit, `_`, `.` or `-`.
    ///
    /// ```
    /// use chatbot_domain::Username;
    /// assert!(Username::allows('_') && Username::allows('Z'));
    /// assert!(!Username::allows(' ') && !Username::allows('é'));
    /// ```
    pub const fn allows(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    }

    /// Accepts `raw` if it follows the username rules; it is not trimmed.
    ///
    /// ```
    /// use chatbot_domain::Username;
    /// assert_eq!(Username::parse("Ada.L").unwrap().as_str(), "Ada.L");
    /// assert_eq!(
    ///     Username::parse("ada lovelace").unwrap_err().to_string(),
    ///     "username may only contain letters, digits, '_', '.' and '-'"
    /// );
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_length(Field::Username, raw, Self::MIN_CHARS, Self::MAX_CHARS)?;
        if !raw.chars().all(Self::allows) {
            return Err(ValidationError::new(
                Field::Username,
                Rule::OnlyAllowed {
                    allowed: Self::ALLOWED,
                },
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as typed at signup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two names share when they belong to the same account (lower case).
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that follows the rules: at least [`Password::MIN_CHARS`]
/// characters, and at most [`Password::MAX_BYTES`] bytes of UTF-8, bcrypt's input limit
/// (longer is refused, never truncated), without control characters (bcrypt ends its
/// input at a NUL). It is not trimmed.
///
/// Its `Debug` output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

redacted_debug!(Password);

impl Password {
    /// Fewest characters of a password.
    pub const MIN_CHARS: usize = 8;
    /// Most bytes of a password: what bcrypt reads.
    pub const MAX_BYTES: usize = 72;

    /// Whether a password may hold `c`: anything but a control character. bcrypt ends
    /// its input at a NUL (`"A"*71 + NUL` and `"A"*71` would share a hash), and no
    /// keyboard types the other control characters.
    pub fn allows(c: char) -> bool {
        !c.is_control()
    }

    /// Accepts `raw` if it follows the password rules; it is not trimmed.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(
                Field::Password,
                Rule::TooManyBytes {
                    max: Self::MAX_BYTES,
                },
            ));
        }
        check_length(Field::Password, raw, Self::MIN_CHARS, Self::MAX_BYTES)?;
        if !raw.chars().all(Self::allows) {
            return Err(ValidationError::new(
                Field::Password,
                Rule::Forbidden {
                    what: "control characters such as NUL or line breaks",
                },
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password itself, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whatever a client typed as its password when logging in.
///
/// Not validated: accounts made under older rules must still be able to log in, and a
/// malformed attempt is simply a wrong password. Its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordAttempt(String);

redacted_debug!(PasswordAttempt);

impl PasswordAttempt {
    /// Wraps the typed password.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The typed password, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<Password> for PasswordAttempt {
    fn from(password: Password) -> Self {
        Self(password.0)
    }
}

/// A password hash in the hasher's own format (bcrypt's modular crypt string).
///
/// Its `Debug` output never shows the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

redacted_debug!(PasswordHash);

impl PasswordHash {
    /// Wraps a hash a [`PasswordHasher`](crate::ports::PasswordHasher) produced or the
    /// storage kept.
    pub fn new(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash, for storage and verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The name as typed at signup.
    pub username: Username,
    /// When the user signed up.
    pub created_at: Timestamp,
}

/// A user about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The chosen name; unique regardless of letter case.
    pub username: Username,
    /// The name they are shown by.
    pub display_name: crate::DisplayName,
    /// Where mail reaches them, unverified; unique regardless of letter case.
    pub email: Option<crate::Email>,
    /// The hash of the chosen password.
    pub password_hash: PasswordHash,
    /// When the user signed up.
    pub created_at: Timestamp,
}

/// A stored user with the hash their password is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The hash of their password.
    pub password_hash: PasswordHash,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of<T: fmt::Debug>(result: Result<T, ValidationError>) -> Rule {
        result.expect_err("value should be refused").rule
    }

    #[test]
    fn username_length_bounds() {
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(rule_of(Username::parse("ab")), Rule::TooShort { min: 3 });
        assert_eq!(rule_of(Username::parse("")), Rule::Blank);
        assert_eq!(
            rule_of(Username::parse(&"a".repeat(33))),
            Rule::TooLong { max: 32 }
        );
    }

    #[test]
    fn username_charset() {
        assert!(Username::parse("A-z_0.9").is_ok());
        for bad in ["al ice", "alice!", "ålice", "al\u{0}ice", " alice"] {
            assert!(
                matches!(rule_of(Username::parse(bad)), Rule::OnlyAllowed { .. }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn username_keeps_case_and_normalizes_to_lower_case() {
        let name = Username::parse("AdaLovelace").unwrap();
        assert_eq!(name.as_str(), "AdaLovelace");
        assert_eq!(name.normalized(), "adalovelace");
    }

    #[test]
    fn password_bounds_count_characters_and_bytes() {
        assert!(Password::parse("12345678").is_ok());
        assert_eq!(
            rule_of(Password::parse("1234567")),
            Rule::TooShort { min: 8 }
        );
        assert_eq!(rule_of(Password::parse("")), Rule::Blank);
        assert!(Password::parse(&"x".repeat(72)).is_ok());
        assert_eq!(
            rule_of(Password::parse(&"x".repeat(73))),
            Rule::TooManyBytes { max: 72 }
        );
        // 8 characters, 32 bytes: long enough and short enough.
        assert!(Password::parse(&"🔑".repeat(8)).is_ok());
        // 19 characters, 76 bytes: over bcrypt's limit although few characters.
        assert_eq!(
            rule_of(Password::parse(&"🔑".repeat(19))),
            Rule::TooManyBytes { max: 72 }
        );
    }

    #[test]
    fn passwords_with_control_characters_are_refused() {
        for bad in [
            "AAAAAAA\0",
            &format!("{}\0", "A".repeat(71)),
            &"\0".repeat(8),
            "pass\nword1",
        ] {
            assert_eq!(
                rule_of(Password::parse(bad)),
                Rule::Forbidden {
                    what: "control characters such as NUL or line breaks"
                },
                "{bad:?}"
            );
        }
        assert!(Password::parse("pass word é 🔑").is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let password = Password::parse("hunter2hunter2").unwrap();
        assert_eq!(format!("{password:?}"), "Password([redacted])");
        let attempt = PasswordAttempt::from(password);
        assert!(!format!("{attempt:?}").contains("hunter2"));
        let hash = PasswordHash::new("$2b$12$secret");
        assert!(!format!("{hash:?}").contains("secret"));
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            Username::parse("ab").unwrap_err().to_string(),
            "username must be at least 3 characters long"
        );
        assert_eq!(
            Password::parse(&"x".repeat(80)).unwrap_err().to_string(),
            "password must be at most 72 bytes long"
        );
    }
}
