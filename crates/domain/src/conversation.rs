//! Conversations: named threads of messages owned by one user.

use std::fmt;

use crate::validation::{Field, ValidationError, forbidden_in_names, parse_name};
use crate::{ConversationId, Message, Timestamp, UserId, is_bidi_control};

/// A valid conversation name: trimmed of what [`ConversationName::trims`], then 1 to
/// [`ConversationName::MAX_CHARS`] characters, each of which it
/// [`allows`](ConversationName::allows) (no control characters, no direction
/// controls).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationName(String);

impl ConversationName {
    /// Most characters of a name.
    pub const MAX_CHARS: usize = 100;
    /// The name of a conversation created without one.
    pub const DEFAULT: &'static str = "New conversation";

    /// `text`, trimmed, cut to at most [`MAX_CHARS`](Self::MAX_CHARS) characters, at
    /// a word boundary when there is one: a title or other generated text made to fit.
    ///
    /// ```
    /// use chatbot_domain::ConversationName;
    /// let long = format!("{} end", "word ".repeat(30));
    /// let clipped = ConversationName::clip(&long);
    /// assert!(clipped.chars().count() <= ConversationName::MAX_CHARS);
    /// assert!(clipped.ends_with("word"));
    /// ```
    pub fn clip(text: &str) -> String {
        // What a name may not hold goes: line breaks become spaces, direction controls
        // vanish.
        let text: String = text
            .chars()
            .filter(|&c| !is_bidi_control(c))
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = text.trim();
        if text.chars().count() <= Self::MAX_CHARS {
            return text.to_owned();
        }
        let cut: String = text.chars().take(Self::MAX_CHARS).collect();
        match cut.rfind(char::is_whitespace) {
            Some(space) if space > 0 => cut[..space].trim_end().to_owned(),
            _ => cut,
        }
    }

    /// Whether parsing trims `c` off the ends of a name: Unicode white space
    /// ([`char::is_whitespace`], as [`str::trim`]).
    pub fn trims(c: char) -> bool {
        c.is_whitespace()
    }

    /// Whether a name, once trimmed, may hold `c`: anything but a control character
    /// ([`char::is_control`]: U+0000 to U+001F and U+007F to U+009F) or a direction
    /// control ([`is_bidi_control`](crate::is_bidi_control)).
    pub fn allows(c: char) -> bool {
        forbidden_in_names(c).is_none()
    }

    /// Trims `raw` and accepts it if it follows the name rules.
    ///
    /// ```
    /// use chatbot_domain::ConversationName;
    /// assert_eq!(ConversationName::parse("  Trip to Oslo ").unwrap().as_str(), "Trip to Oslo");
    /// assert!(ConversationName::parse("   ").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        parse_name(raw, Field::Name, Self::MAX_CHARS).map(|name| Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ConversationName {
    /// `"New conversation"`.
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for ConversationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The conversation's id.
    pub id: ConversationId,
    /// The user it belongs to; nobody else sees it.
    pub owner: UserId,
    /// Its name.
    pub name: ConversationName,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last active: created, renamed or given a message. Lists show the
    /// most recently active conversation first.
    pub updated_at: Timestamp,
}

/// A conversation about to be stored; it starts active at `created_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    /// The user it belongs to.
    pub owner: UserId,
    /// Its name.
    pub name: ConversationName,
    /// When it is created.
    pub created_at: Timestamp,
}

/// The version of everything a user keeps: a number that rises with every change to
/// their conversations, messages or account, in the same transaction as the change.
///
/// Two reads that find the same revision find the same conversations and messages, so
/// a rendering of them can be reused, or a client's copy confirmed current, for as
/// long as the revision stays. A later revision is never smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision(pub i64);

/// A conversation with all its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationWithMessages {
    /// The conversation.
    pub conversation: Conversation,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rule;

    #[test]
    fn names_are_trimmed_and_bounded_after_trimming() {
        assert_eq!(ConversationName::parse(" a ").unwrap().as_str(), "a");
        let hundred = format!("  {}  ", "é".repeat(100));
        assert_eq!(
            ConversationName::parse(&hundred)
                .unwrap()
                .as_str()
                .chars()
                .count(),
            100
        );
        assert_eq!(
            ConversationName::parse(&"é".repeat(101)).unwrap_err().rule,
            Rule::TooLong { max: 100 }
        );
        assert_eq!(
            ConversationName::parse(" \t\n ").unwrap_err().rule,
            Rule::Blank
        );
    }

    #[test]
    fn names_refuse_control_characters_inside() {
        let error = ConversationName::parse("two\nlines").unwrap_err();
        assert_eq!(error.field, Field::Name);
        assert!(matches!(error.rule, Rule::Forbidden { .. }));
        assert!(ConversationName::parse("nul\u{0}").is_err());
    }

    #[test]
    fn names_refuse_direction_controls_and_titles_lose_them() {
        for bidi in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}',
        ] {
            let error = ConversationName::parse(&format!("invoice{bidi}fdp.exe")).unwrap_err();
            assert_eq!(
                error.to_string(),
                "name must not contain direction controls such as U+202E",
                "{bidi:?}"
            );
        }
        // Hebrew and Arabic text is no control.
        assert!(ConversationName::parse("שלום مرحبا").is_ok());
        let title = ConversationName::clip("Trip\u{202E} to\nOslo\u{2069}");
        assert_eq!(title, "Trip to Oslo");
        assert!(ConversationName::parse(&title).is_ok());
    }

    #[test]
    fn default_name() {
        assert_eq!(ConversationName::default().as_str(), "New conversation");
    }
}
