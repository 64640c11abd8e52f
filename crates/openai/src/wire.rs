//! The JSON of the Chat Completions API: the request, a streamed chunk, a whole
//! completion. Only the fields the adapter uses; servers add many more.

use chatbot_domain::{Message, ReplyContext, Sender};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// A `POST /chat/completions` body.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub(crate) model: &'a str,
    pub(crate) messages: Vec<ChatMessage<'a>>,
    pub(crate) stream: bool,
    pub(crate) max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
}

/// One message of the conversation the model sees.
#[derive(Debug, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: &'a str,
}

impl<'a> ChatMessage<'a> {
    pub(crate) const fn system(content: &'a str) -> Self {
        Self {
            role: "system",
            content,
        }
    }

    pub(crate) const fn user(content: &'a str) -> Self {
        Self {
            role: "user",
            content,
        }
    }

    /// A stored message, in the role of its sender.
    pub(crate) fn stored(message: &'a Message) -> Self {
        let role = match message.sender {
            Sender::User => "user",
            Sender::Bot => "assistant",
        };
        Self {
            role,
            content: &message.text,
        }
    }
}

/// The messages for a reply: the system prompt, the history oldest first, the new
/// message. Empty texts (a reply interrupted before its first word) are left out: some
/// servers refuse empty messages, and they tell the model nothing.
pub(crate) fn reply_messages(context: &ReplyContext) -> Vec<ChatMessage<'_>> {
    let mut messages = Vec::with_capacity(context.history.len() + 2);
    if !context.system_prompt.trim().is_empty() {
        messages.push(ChatMessage::system(&context.system_prompt));
    }
    messages.extend(
        context
            .history
            .iter()
            .chain(std::iter::once(&context.message))
            .filter(|message| !message.text.trim().is_empty())
            .map(ChatMessage::stored),
    );
    messages
}

/// One `data:` event of a streamed completion.
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    /// Empty or absent in a final usage chunk.
    #[serde(default)]
    pub(crate) choices: Option<Vec<ChunkChoice>>,
    /// Set when the provider reports an error inside the stream (llama.cpp, vLLM).
    #[serde(default)]
    pub(crate) error: Option<IgnoredAny>,
    /// `"error"` in the error objects of older vLLM versions.
    #[serde(default)]
    pub(crate) object: Option<String>,
}

impl Chunk {
    /// Whether the chunk reports an error instead of carrying a completion.
    pub(crate) fn is_error(&self) -> bool {
        self.error.is_some() || self.object.as_deref() == Some("error")
    }
}

/// A choice of a streamed chunk.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default)]
    pub(crate) delta: Option<Delta>,
    /// Non-null once the choice is complete (`stop`, `length`...).
    #[serde(default)]
    pub(crate) finish_reason: Option<IgnoredAny>,
}

/// What a chunk adds to a choice.
#[derive(Debug, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub(crate) content: Option<String>,
}

/// A whole (non-streamed) completion.
#[derive(Debug, Deserialize)]
pub(crate) struct Completion {
    #[serde(default)]
    pub(crate) choices: Vec<CompletionChoice>,
}

/// A choice of a whole completion.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionChoice {
    #[serde(default)]
    pub(crate) index: u32,
    pub(crate) message: CompletionMessage,
}

/// The message of a whole completion.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
}
