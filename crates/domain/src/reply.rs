//! What the bot is asked, how its reply arrives, and how a reply being written is
//! followed.

use std::pin::Pin;

use futures_core::Stream;

use crate::{BotError, ConversationName, Message, MessageId};

/// Everything the bot sees to reply to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyContext {
    /// Instructions that come before the conversation (the `system` message).
    pub system_prompt: String,
    /// The conversation's most recent messages before [`message`](Self::message),
    /// oldest first, at most as many as configured.
    pub history: Vec<Message>,
    /// The user's new message, already stored.
    pub message: Message,
}

/// A reply as it arrives: pieces of text in order, until the stream ends (the reply
/// is whole) or yields an error (the pieces so far are all there will be). Dropping
/// it stops the bot: an adapter cancels its request to the provider.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Result<String, BotError>> + Send>>;

/// The text of a reply so far, and where each of its deltas ends: delta `n` (counted
/// from 1) is the text between the ends of deltas `n - 1` and `n`. The ends are stored
/// with the text, so a reader anywhere can resume after any delta without a gap or a
/// repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyText {
    text: String,
    ends: Vec<usize>,
}

impl ReplyText {
    /// No text yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reply's `text` with the byte offsets where its deltas end, as stored; `None`
    /// when they do not fit the text (not rising, past its end, or inside a
    /// character).
    pub fn from_parts(text: String, ends: Vec<usize>) -> Option<Self> {
        let mut previous = 0;
        for &end in &ends {
            if end <= previous || !text.is_char_boundary(end) {
                return None;
            }
            previous = end;
        }
        Some(Self { text, ends })
    }

    /// The most bytes of text in one delta: a longer piece is cut into several, so
    /// that every delta fits in a small message between instances.
    pub const MAX_DELTA_BYTES: usize = 1_024;

    /// Appends `piece` as the next delta (several, for a piece longer than
    /// [`MAX_DELTA_BYTES`](Self::MAX_DELTA_BYTES), cut between characters), without
    /// NUL characters (a database cannot hold them); a piece with nothing left is no
    /// delta. Returns how many deltas it added.
    pub fn push(&mut self, piece: &str) -> u64 {
        let start = self.text.len();
        if piece.contains('\0') {
            self.text.extend(piece.chars().filter(|&c| c != '\0'));
        } else {
            self.text.push_str(piece);
        }
        let before = self.ends.len();
        let mut end = start;
        while end < self.text.len() {
            end = (end + Self::MAX_DELTA_BYTES).min(self.text.len());
            while !self.text.is_char_boundary(end) {
                end -= 1;
            }
            self.ends.push(end);
        }
        u64::try_from(self.ends.len() - before).unwrap_or(u64::MAX)
    }

    /// The whole text so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where each delta ends, in bytes into [`as_str`](Self::as_str).
    pub fn ends(&self) -> &[usize] {
        &self.ends
    }

    /// How many deltas the text holds.
    pub fn deltas(&self) -> u64 {
        u64::try_from(self.ends.len()).unwrap_or(u64::MAX)
    }

    /// The text of delta `seq` (counted from 1), if it has come.
    pub fn delta(&self, seq: u64) -> Option<&str> {
        let index = usize::try_from(seq).ok()?.checked_sub(1)?;
        let end = *self.ends.get(index)?;
        self.text.get(self.end_of(index)..end)
    }

    /// The text after delta `seq` (all of it after delta 0).
    pub fn after(&self, seq: u64) -> &str {
        let offset = usize::try_from(seq).map_or(self.text.len(), |seq| self.end_of(seq));
        self.text.get(offset..).unwrap_or_default()
    }

    /// Where the first `count` deltas end: 0 for none, the whole text for more
    /// deltas than there are.
    fn end_of(&self, count: usize) -> usize {
        match count.checked_sub(1) {
            None => 0,
            Some(last) => self.ends.get(last).copied().unwrap_or(self.text.len()),
        }
    }

    /// The text, giving up the ends.
    pub fn into_string(self) -> String {
        self.text
    }
}

/// A stored reply as a reader finds it: the message (while it is
/// [streaming](crate::MessageStatus::Streaming), its text is the latest checkpoint)
/// and where that text's deltas end (none once it is finished).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySnapshot {
    /// The bot's message as stored.
    pub message: Message,
    /// Where each delta of its text ends, in bytes, while it is being written.
    pub ends: Vec<usize>,
}

/// What starting a reply stored: the user's message and the bot's reply, empty and
/// [streaming](crate::MessageStatus::Streaming), right after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BegunExchange {
    /// What the user said, as stored.
    pub user_message: Message,
    /// The bot's reply as created: no text yet.
    pub reply: Message,
    /// The conversation's name when the message came.
    pub conversation_name: ConversationName,
}

/// One step of a reply being written, as a reader sees it.
#[derive(Debug, Clone)]
pub enum ReplyEvent {
    /// The reply as created (sent to a reader that follows it from the start).
    Started(Message),
    /// More text.
    Delta(Delta),
    /// The reply ended and is stored: [complete](crate::MessageStatus::Complete), or
    /// [interrupted](crate::MessageStatus::Interrupted) by a stop.
    Done(Message),
    /// The reply failed. The message is what was stored of it, if any text had come.
    Failed {
        /// Why.
        failure: ReplyFailure,
        /// The stored reply, [failed](crate::MessageStatus::Failed), when some text
        /// had come.
        message: Option<Message>,
    },
}

/// A piece of a reply's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The reply it belongs to.
    pub message_id: MessageId,
    /// Its number in the reply, from 1: a reader that has seen delta `seq` resumes
    /// after it.
    pub seq: u64,
    /// The text.
    pub text: String,
}

/// Why a reply failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplyFailure {
    /// The bot did not reply, or broke off.
    #[error(transparent)]
    Bot(#[from] BotError),
    /// The reply's conversation was deleted while it was being written.
    #[error("the conversation was deleted")]
    Gone,
    /// The reply had failed already, before this reader came.
    #[error("the bot broke off the reply")]
    BrokeOff,
    /// The reply could not be stored (the database was unreachable).
    #[error("the reply could not be stored")]
    Unstored,
}

/// The events of a reply for one reader, in order, ending after
/// [`Done`](ReplyEvent::Done) or [`Failed`](ReplyEvent::Failed). Dropping it stops
/// following, never the reply.
pub type ReplyFeed = Pin<Box<dyn Stream<Item = ReplyEvent> + Send>>;

/// A reply just started: the user's message, stored, and the reply's events from the
/// start.
pub struct StartedReply {
    /// What the user said, as stored.
    pub user_message: Message,
    /// The reply's events, from [`Started`](ReplyEvent::Started).
    pub events: ReplyFeed,
}

impl std::fmt::Debug for StartedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedReply")
            .field("user_message", &self.user_message)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_split_the_text_where_the_pieces_ended() {
        let mut text = ReplyText::new();
        for piece in ["Hel", "lo, ", "", "wörld", "\0"] {
            text.push(piece);
        }
        assert_eq!(text.as_str(), "Hello, wörld");
        assert_eq!(text.deltas(), 3);
        assert_eq!(text.delta(1), Some("Hel"));
        assert_eq!(text.delta(2), Some("lo, "));
        assert_eq!(text.delta(3), Some("wörld"));
        assert_eq!(text.delta(0), None);
        assert_eq!(text.delta(4), None);
        assert_eq!(text.after(0), "Hello, wörld");
        assert_eq!(text.after(2), "wörld");
        assert_eq!(text.after(3), "");
        assert_eq!(text.after(9), "");
    }

    #[test]
    fn a_long_piece_is_cut_into_deltas_of_at_most_max_delta_bytes_between_characters() {
        let mut text = ReplyText::new();
        let long = "é".repeat(ReplyText::MAX_DELTA_BYTES); // 2 bytes each
        assert_eq!(text.push(&long), 2);
        assert_eq!(text.push("!"), 1);
        assert_eq!(text.ends(), [1_024, 2_048, 2_049]);
        assert_eq!(text.delta(1).unwrap().chars().count(), 512);
        let mut odd = ReplyText::new();
        odd.push(&format!("a{}", "é".repeat(600)));
        assert_eq!(
            odd.ends(),
            [1_023, 1_201],
            "cut before the character, not inside"
        );
    }

    #[test]
    fn stored_ends_must_fit_the_text() {
        let text = "añb".to_owned();
        assert!(ReplyText::from_parts(text.clone(), vec![1, 3, 4]).is_some());
        assert!(
            ReplyText::from_parts(text.clone(), vec![2]).is_none(),
            "inside ñ"
        );
        assert!(ReplyText::from_parts(text.clone(), vec![3, 3]).is_none());
        assert!(ReplyText::from_parts(text.clone(), vec![5]).is_none());
        assert!(ReplyText::from_parts(text, vec![0]).is_none());
    }
}
