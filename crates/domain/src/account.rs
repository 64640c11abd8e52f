//! Accounts beyond logging in: the profile, the email address and the tokens mailed
//! to it.

use std::fmt;
use std::time::Duration;

use crate::validation::{
    Field, Rule, ValidationError, check_length, forbidden_in_names, parse_name,
};
use crate::{SecretDigest, SecretToken, Timestamp, User, UserId, Username};

/// An email address whose syntax is checked: `local@domain`, ASCII, at most
/// [`Email::MAX_CHARS`] characters, the local part made of `A-Z a-z 0-9` and
/// ``!#$%&'*+/=?^_`{|}~.-`` (no leading, trailing or double dot), the domain made of
/// labels of 1 to 63 letters, digits and inner hyphens joined by dots. It is trimmed.
///
/// RFC 5321's 64-character limit on the local part is not enforced: a relay refuses
/// such an address itself, and JSON Schema could not say it in the document.
///
/// Kept as typed; two addresses that differ only in letter case belong to the same
/// account, see [`Email::normalized`]. Whether the address exists is for a mail to tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Most characters of an address (what SMTP carries in a path).
    pub const MAX_CHARS: usize = 254;
    const EXPECTED: &'static str = "an email address such as name@example.com";

    /// Trims `raw` and accepts it if it is an email address.
    ///
    /// ```
    /// use chatbot_domain::Email;
    /// assert_eq!(Email::parse(" Ada@Example.com ").unwrap().as_str(), "Ada@Example.com");
    /// assert_eq!(
    ///     Email::parse("ada@").unwrap_err().to_string(),
    ///     "email must be an email address such as name@example.com"
    /// );
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let address = raw.trim();
        check_length(Field::Email, address, 1, Self::MAX_CHARS)?;
        let malformed = || {
            ValidationError::new(
                Field::Email,
                Rule::Malformed {
                    expected: Self::EXPECTED,
                },
            )
        };
        let (local, domain) = address.rsplit_once('@').ok_or_else(malformed)?;
        if !Self::local_part_ok(local) || !Self::domain_ok(domain) {
            return Err(malformed());
        }
        Ok(Self(address.to_owned()))
    }

    fn local_part_ok(local: &str) -> bool {
        let atext = |c: char| c.is_ascii_alphanumeric() || Self::LOCAL_SPECIALS.contains(c);
        !local.is_empty()
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    }

    fn domain_ok(domain: &str) -> bool {
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        domain.split('.').all(label_ok)
    }

    /// The characters of the local part's dot-separated atoms (RFC 5322 `atext`).
    pub const LOCAL_SPECIALS: &'static str = "!#$%&'*+/=?^_`{|}~-";

    /// The address as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two addresses share when they belong to the same account (lower case).
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// Whether `other` is the same address, letter case aside.
    pub fn same_as(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a user is shown by: trimmed, 1 to [`DisplayName::MAX_CHARS`] characters,
/// no control characters. A new account's is its username.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Most characters of a display name.
    pub const MAX_CHARS: usize = 64;

    /// Whether parsing trims `c` off the ends of a name: Unicode white space.
    pub fn trims(c: char) -> bool {
        c.is_whitespace()
    }

    /// Whether a name, once trimmed, may hold `c`: anything but a control character
    /// or a direction control ([`is_bidi_control`](crate::is_bidi_control)).
    pub fn allows(c: char) -> bool {
        forbidden_in_names(c).is_none()
    }

    /// Trims `raw` and accepts it if it follows the display name rules.
    ///
    /// ```
    /// use chatbot_domain::DisplayName;
    /// assert_eq!(DisplayName::parse("  Ada Lovelace ").unwrap().as_str(), "Ada Lovelace");
    /// assert!(DisplayName::parse("   ").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_name(raw, Field::DisplayName, Self::MAX_CHARS).map(|name| Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Username> for DisplayName {
    fn from(username: &Username) -> Self {
        // A username is 3 to 32 visible ASCII characters: always a valid display name.
        Self(username.as_str().to_owned())
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user shows of themselves, and the address mail reaches them at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The account.
    pub user: User,
    /// The name shown for them.
    pub display_name: DisplayName,
    /// Where mail reaches them, if they gave an address.
    pub email: Option<Email>,
    /// Whether they have shown that the address is theirs (by a link mailed to it).
    pub email_verified: bool,
}

/// A change to a profile: what is `None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    /// A new display name.
    pub display_name: Option<DisplayName>,
    /// A new address (`Some(None)` removes it); a new address is unverified.
    pub email: Option<Option<Email>>,
}

/// Everything a sign-up gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The login name.
    pub username: Username,
    /// The password.
    pub password: crate::Password,
    /// Where mail may reach them; a verification mail goes there.
    pub email: Option<Email>,
}

/// What a mailed token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// Show that an email address is theirs.
    VerifyEmail,
    /// Choose a new password without the old one.
    ResetPassword,
}

impl TokenPurpose {
    /// How long a token for this purpose works after it is made: a day to verify an
    /// address, half an hour to reset a password.
    pub const fn lifetime(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::from_secs(24 * 60 * 60),
            Self::ResetPassword => Duration::from_secs(30 * 60),
        }
    }

    /// Its name in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// The purpose stored as `name`, if any.
    pub fn from_stored(name: &str) -> Option<Self> {
        [Self::VerifyEmail, Self::ResetPassword]
            .into_iter()
            .find(|purpose| purpose.as_str() == name)
    }
}

/// A mailed token about to be stored: its digest, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccountToken {
    /// The token's digest.
    pub digest: SecretDigest,
    /// Whose it is.
    pub user: UserId,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it was mailed to.
    pub email: Email,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A stored mailed token, as taken back (once) by its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    /// Whose it is.
    pub user: UserId,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it was mailed to.
    pub email: Email,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A mail to a user carrying a token, for the [`Mailer`](crate::ports::Mailer) to
/// write and send: a link to the client's `/verify?token=` or `/reset?token=` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMail {
    /// The address it goes to.
    pub to: Email,
    /// Who they are, for the greeting.
    pub display_name: DisplayName,
    /// What the link in it does; also how long it works.
    pub purpose: TokenPurpose,
    /// The token the link carries.
    pub token: SecretToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked_for_syntax() {
        for good in [
            "ada@example.com",
            "a.d+a@sub.example.co.uk",
            "o'hara@example.org",
            "user@localhost",
            "UPPER@EXAMPLE.COM",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@example..com",
            "ada@-example.com",
            "ada@example.com.",
            "adä@example.com",
            "ada@exämple.com",
            "<ada@example.com>",
            "Ada <ada@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let too_long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&too_long).is_err());
        let longest_label = format!("ada@{}.com", "b".repeat(63));
        assert!(Email::parse(&longest_label).is_ok());
        assert!(Email::parse(&format!("ada@{}.com", "b".repeat(64))).is_err());
    }

    #[test]
    fn addresses_differing_in_case_are_the_same() {
        let a = Email::parse("Ada@Example.COM").unwrap();
        let b = Email::parse("ada@example.com").unwrap();
        assert!(a.same_as(&b));
        assert_eq!(a.normalized(), b.as_str());
        assert_eq!(a.as_str(), "Ada@Example.COM");
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse(" Ada ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        let long = DisplayName::parse(&"é".repeat(65)).unwrap_err();
        assert_eq!(
            long.to_string(),
            "display_name must be at most 64 characters long"
        );
        assert_eq!(
            DisplayName::parse("").unwrap_err().to_string(),
            "display_name must not be empty"
        );
        assert_eq!(
            DisplayName::parse("a\u{7}b").unwrap_err().to_string(),
            "display_name must not contain control characters such as line breaks"
        );
        assert_eq!(
            DisplayName::parse("evil\u{202E}gpj.exe")
                .unwrap_err()
                .to_string(),
            "display_name must not contain direction controls such as U+202E"
        );
    }

    #[test]
    fn purposes_round_trip_through_storage() {
        for purpose in [TokenPurpose::VerifyEmail, TokenPurpose::ResetPassword] {
            assert_eq!(TokenPurpose::from_stored(purpose.as_str()), Some(purpose));
        }
        assert_eq!(TokenPurpose::from_stored("other"), None);
        assert_eq!(
            TokenPurpose::ResetPassword.lifetime(),
            Duration::from_secs(1800)
        );
    }
}
