//! Messages: what the user said and what the bot replied.

use std::fmt;
use std::str::FromStr;

use crate::validation::{Field, Rule, ValidationError, check_length};
use crate::{ConversationId, MessageId, Timestamp};

/// Valid text of a user's message: trimmed of what [`MessageText::trims`], then 1 to a
/// configurable number of characters ([`MessageText::DEFAULT_MAX_CHARS`] by default),
/// each of which it [`allows`](MessageText::allows) (no NUL: PostgreSQL cannot store it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageText(String);

impl MessageText {
    /// Most characters of a message unless configured otherwise.
    pub const DEFAULT_MAX_CHARS: usize = 16_000;

    /// Whether parsing trims `c` off the ends of a text: Unicode white space
    /// ([`char::is_whitespace`], as [`str::trim`]).
    pub fn trims(c: char) -> bool {
        c.is_whitespace()
    }

    /// Whether a text may hold `c`: anything but NUL (U+0000).
    pub const fn allows(c: char) -> bool {
        c != '\0'
    }

    /// Trims `raw` and accepts it if it has 1 to [`Self::DEFAULT_MAX_CHARS`] characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::parse_with_limit(raw, Self::DEFAULT_MAX_CHARS)
    }

    /// Trims `raw` and accepts it if it has 1 to `max_chars` characters.
    ///
    /// ```
    /// use chatbot_domain::MessageText;
    /// assert_eq!(MessageText::parse_with_limit(" hi\n", 5).unwrap().as_str(), "hi");
    /// assert_eq!(
    ///     MessageText::parse_with_limit("hello!", 5).unwrap_err().to_string(),
    ///     "text must be at most 5 characters long"
    /// );
    /// ```
    pub fn parse_with_limit(raw: &str, max_chars: usize) -> Result<Self, ValidationError> {
        let text = raw.trim_matches(Self::trims);
        check_length(Field::Text, text, 1, max_chars)?;
        if text.contains(|c| !Self::allows(c)) {
            return Err(ValidationError::new(
                Field::Text,
                Rule::Forbidden {
                    what: "NUL characters",
                },
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, giving up the wrapper.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// The conversation's owner.
    User,
    /// The bot, replying.
    Bot,
}

impl Sender {
    /// `"user"` or `"bot"`, as stored and as shown in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Bot => "bot",
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was neither `"user"` nor `"bot"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sender {0:?}: expected \"user\" or \"bot\"")]
pub struct UnknownSender(pub String);

impl FromStr for Sender {
    type Err = UnknownSender;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "bot" => Ok(Self::Bot),
            other => Err(UnknownSender(other.to_owned())),
        }
    }
}

/// Where a message stands: user messages are always complete; a bot's reply is
/// complete once the bot has finished it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Whole.
    Complete,
    /// The bot is still writing it.
    Streaming,
    /// Stopped before the bot finished: by the user, or because the process writing it
    /// died. The text is what had come.
    Interrupted,
    /// The bot failed part-way. The text is what had come.
    Failed,
}

impl MessageStatus {
    /// `"complete"`, `"streaming"`, `"interrupted"` or `"failed"`, as stored and as
    /// shown in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Streaming => "streaming",
            Self::Interrupted => "interrupted",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text named no [`MessageStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for MessageStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "complete" => Ok(Self::Complete),
            "streaming" => Ok(Self::Streaming),
            "interrupted" => Ok(Self::Interrupted),
            "failed" => Ok(Self::Failed),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub sender: Sender,
    /// What it says. A user's text was a valid [`MessageText`]; a bot's is kept as the
    /// bot wrote it.
    pub text: String,
    /// Whether it is whole.
    pub status: MessageStatus,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// A message about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Who wrote it.
    pub sender: Sender,
    /// What it says.
    pub text: String,
    /// Whether it is whole.
    pub status: MessageStatus,
    /// When it is stored.
    pub created_at: Timestamp,
}

/// The outcome of sending a message: the user's message and the bot's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// What the user said, as stored.
    pub user_message: Message,
    /// What the bot replied, as stored.
    pub bot_message: Message,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded_after_trimming() {
        assert_eq!(MessageText::parse("  hi  ").unwrap().as_str(), "hi");
        assert_eq!(MessageText::parse("  \n ").unwrap_err().rule, Rule::Blank);
        let longest = "ü".repeat(MessageText::DEFAULT_MAX_CHARS);
        assert!(MessageText::parse(&longest).is_ok());
        assert_eq!(
            MessageText::parse(&format!("{longest}ü")).unwrap_err().rule,
            Rule::TooLong { max: 16_000 }
        );
    }

    #[test]
    fn text_keeps_inner_whitespace_and_refuses_nul() {
        let text = "line one\n\n  indented\tline";
        assert_eq!(MessageText::parse(text).unwrap().as_str(), text);
        assert_eq!(MessageText::parse("a\0b").unwrap_err().field, Field::Text);
    }

    #[test]
    fn status_round_trips_through_its_name() {
        for status in [
            MessageStatus::Complete,
            MessageStatus::Streaming,
            MessageStatus::Interrupted,
            MessageStatus::Failed,
        ] {
            assert_eq!(status.as_str().parse::<MessageStatus>(), Ok(status));
        }
        assert!("done".parse::<MessageStatus>().is_err());
    }

    #[test]
    fn sender_round_trips_through_its_name() {
        for sender in [Sender::User, Sender::Bot] {
            assert_eq!(sender.as_str().parse::<Sender>(), Ok(sender));
        }
        assert!("system".parse::<Sender>().is_err());
    }
}
