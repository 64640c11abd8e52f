//! What can go wrong with a provider's answer, as causes of [`BotError`]s.
//!
//! None of these texts holds anything the provider sent: its error bodies may echo the
//! request, or a key.

use std::sync::Arc;

use chatbot_domain::BotError;

use crate::sse::SseError;

/// Why a provider's answer is unusable; the cause of a [`BotError::Broken`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    /// The body ended before the provider said the reply was complete.
    #[error("the provider's stream ended before a finish_reason or [DONE]")]
    EndedEarly,
    /// The connection broke while the body was being read.
    #[error("the connection to the provider broke")]
    Connection(#[source] reqwest::Error),
    /// The bytes are not an event stream.
    #[error("the provider's answer is not a valid event stream")]
    Sse(#[source] SseError),
    /// An event's data is not a chunk of a chat completion.
    #[error("the provider sent a chunk that is not a valid chat completion chunk ({0})")]
    BadChunk(JsonFault),
    /// The provider reported an error inside the stream.
    #[error("the provider reported an error inside the stream")]
    ProviderError,
    /// A whole completion is not one.
    #[error("the provider's answer is not a valid chat completion ({0})")]
    BadCompletion(JsonFault),
    /// A whole completion is implausibly large.
    #[error("the provider's answer is larger than {limit} bytes")]
    TooLarge {
        /// The most bytes accepted.
        limit: usize,
    },
}

/// Where and how JSON failed to parse, without serde's message: it may quote what the
/// provider sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonFault {
    syntax: bool,
    line: usize,
    column: usize,
}

impl From<serde_json::Error> for JsonFault {
    fn from(error: serde_json::Error) -> Self {
        Self {
            syntax: !error.is_data(),
            line: error.line(),
            column: error.column(),
        }
    }
}

impl std::fmt::Display for JsonFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.syntax {
            "not JSON"
        } else {
            "unexpected JSON"
        };
        write!(f, "{what} at line {}, column {}", self.line, self.column)
    }
}

impl From<Fault> for BotError {
    fn from(fault: Fault) -> Self {
        BotError::Broken(Arc::new(fault))
    }
}

/// A request that got no answer: the provider cannot be reached, or (a timeout while
/// connecting) did not answer in time.
pub(crate) fn request_failed(error: reqwest::Error) -> BotError {
    if error.is_timeout() {
        BotError::Timeout
    } else {
        BotError::Unreachable(Arc::new(error))
    }
}
