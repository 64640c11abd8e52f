//! Why a value was refused: the field and the rule it broke.

use std::fmt;

/// The input fields whose values the domain validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// A user's login name.
    Username,
    /// A user's password.
    Password,
    /// A conversation's name.
    Name,
    /// A message's text.
    Text,
    /// The size of a page.
    Limit,
    /// Where a page starts.
    Before,
    /// An email address.
    Email,
    /// The name a user is shown by.
    DisplayName,
    /// The password a user has, to change it.
    CurrentPassword,
    /// The password a user chooses in place of theirs.
    NewPassword,
}

impl Field {
    /// The field's name as clients send it, in JSON or in a query string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Password => "password",
            Self::Name => "name",
            Self::Text => "text",
            Self::Limit => "limit",
            Self::Before => "before",
            Self::Email => "email",
            Self::DisplayName => "display_name",
            Self::CurrentPassword => "current_password",
            Self::NewPassword => "new_password",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule a value broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Nothing but whitespace.
    Blank,
    /// Fewer characters than the minimum.
    TooShort {
        /// Fewest characters allowed.
        min: usize,
    },
    /// More characters than the maximum.
    TooLong {
        /// Most characters allowed.
        max: usize,
    },
    /// More bytes of UTF-8 than the maximum.
    TooManyBytes {
        /// Most bytes allowed.
        max: usize,
    },
    /// A character outside the allowed set.
    OnlyAllowed {
        /// The allowed characters, in words.
        allowed: &'static str,
    },
    /// A character of a forbidden kind.
    Forbidden {
        /// The forbidden characters, in words.
        what: &'static str,
    },
    /// Not a whole number in the allowed range.
    OutOfRange {
        /// Smallest number allowed.
        min: u64,
        /// Largest number allowed.
        max: u64,
    },
    /// Not the kind of value the field takes.
    Malformed {
        /// What the field takes, in words.
        expected: &'static str,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => f.write_str("must not be empty"),
            Self::TooShort { min } => write!(f, "must be at least {min} characters long"),
            Self::TooLong { max } => write!(f, "must be at most {max} characters long"),
            Self::TooManyBytes { max } => write!(f, "must be at most {max} bytes long"),
            Self::OnlyAllowed { allowed } => write!(f, "may only contain {allowed}"),
            Self::Forbidden { what } => write!(f, "must not contain {what}"),
            Self::OutOfRange { min, max } => {
                write!(f, "must be a whole number from {min} to {max}")
            }
            Self::Malformed { expected } => write!(f, "must be {expected}"),
        }
    }
}

/// A value was refused: which field, and which rule it broke.
///
/// Displays as a sentence a UI can show, such as
/// `username must be at least 3 characters long`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{field} {rule}")]
pub struct ValidationError {
    /// The refused field.
    pub field: Field,
    /// The rule its value broke.
    pub rule: Rule,
}

impl ValidationError {
    /// A refusal of `field` for breaking `rule`.
    pub const fn new(field: Field, rule: Rule) -> Self {
        Self { field, rule }
    }
}

/// Whether `c` is a bidirectional formatting character (U+061C, U+200E, U+200F,
/// U+202A to U+202E, U+2066 to U+2069): invisible, it reorders the text around it, so
/// a name holding U+202E can show reversed, or pass for another.
///
/// ```
/// use chatbot_domain::is_bidi_control;
/// assert!(is_bidi_control('\u{202E}') && is_bidi_control('\u{2066}'));
/// assert!(!is_bidi_control('a') && !is_bidi_control('\u{05D0}'));
/// ```
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The rule a name breaks with `c`, if any: a control character, or a direction
/// control.
pub(crate) fn forbidden_in_names(c: char) -> Option<Rule> {
    if c.is_control() {
        Some(Rule::Forbidden {
            what: "control characters such as line breaks",
        })
    } else if is_bidi_control(c) {
        Some(Rule::Forbidden {
            what: "direction controls such as U+202E",
        })
    } else {
        None
    }
}

/// `raw` as a name of `field`: trimmed of Unicode white space, then 1 to `max_chars`
/// characters with none that [`forbidden_in_names`] refuses.
pub(crate) fn parse_name(
    raw: &str,
    field: Field,
    max_chars: usize,
) -> Result<&str, ValidationError> {
    let name = raw.trim_matches(char::is_whitespace);
    check_length(field, name, 1, max_chars)?;
    if let Some(rule) = name.chars().find_map(forbidden_in_names) {
        return Err(ValidationError::new(field, rule));
    }
    Ok(name)
}

/// Checks the character count of an already trimmed `value` against `min..=max`.
pub(crate) fn check_length(
    field: Field,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), ValidationError> {
    let refuse = |rule| Err(ValidationError::new(field, rule));
    // Counting stops past `max`, so a huge input costs no more than a valid one.
    match value.chars().take(max.saturating_add(1)).count() {
        0 if min > 0 => refuse(Rule::Blank),
        n if n < min => refuse(Rule::TooShort { min }),
        n if n > max => refuse(Rule::TooLong { max }),
        _ => Ok(()),
    }
}
