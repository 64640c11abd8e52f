//! Changes to a user's data, as every device of theirs learns of them (SPEC §10).

use crate::{Conversation, ConversationId, Delta, Message, UserId};

/// A change to one user's data. The use cases publish one for every change they make;
/// adapters deliver it to that user's devices, on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whose data changed: only their devices may learn of it.
    pub owner: UserId,
    /// What changed.
    pub change: Change,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message was stored: the user's, or the bot's reply as it starts.
    MessageCreated(Message),
    /// More text of a reply being written, in its conversation.
    MessageDelta {
        /// The reply's conversation.
        conversation_id: ConversationId,
        /// The text.
        delta: Delta,
    },
    /// A reply ended (complete, failed or interrupted), as stored.
    MessageUpdated(Message),
    /// A conversation was started.
    ConversationCreated(Conversation),
    /// A conversation was renamed or titled.
    ConversationUpdated(Conversation),
    /// A conversation was deleted, with its messages.
    ConversationDeleted(ConversationId),
    /// Some of the user's sessions ended (logout, revocation): each device checks
    /// whether its own is still live.
    SessionsEnded,
}

impl Event {
    /// `change` to `owner`'s data.
    pub fn new(owner: UserId, change: Change) -> Self {
        Self { owner, change }
    }
}
