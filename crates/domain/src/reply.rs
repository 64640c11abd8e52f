//! What the bot is asked, and how its reply arrives.

use std::pin::Pin;

use futures_core::Stream;

use crate::{BotError, Message};

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

/// The next item of `stream`, as a future (the domain has no stream utilities).
pub(crate) async fn next_piece(stream: &mut ReplyStream) -> Option<Result<String, BotError>> {
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}
