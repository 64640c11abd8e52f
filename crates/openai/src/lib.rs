#![warn(missing_docs)]
//! The domain's [`Bot`](chatbot_domain::ports::Bot) port on any server speaking the
//! OpenAI Chat Completions API with streaming: OpenAI, Ollama, llama.cpp's server,
//! vLLM, LM Studio, OpenRouter...
//!
//! [`OpenAiBot::new`] takes an [`OpenAiConfig`] of plain values. A reply is one
//! streamed `POST {base_url}/chat/completions`: the system prompt, the history oldest
//! first (user messages as `user`, the bot's as `assistant`), then the new message.
//! [`reply`](chatbot_domain::ports::Bot::reply) returns once the provider answered
//! with a success status; the pieces of text then come through the stream, which ends
//! when the provider says the reply is complete (a `finish_reason`, or `data: [DONE]`).
//! Dropping the stream closes the connection, so the provider stops generating.
//!
//! Failures become [`BotError`](chatbot_domain::BotError)s: a connection refused is
//! `Unreachable`; an error status is `Status` (429 and 503 are retried first, honouring
//! `Retry-After`, while the first-token timeout allows); no text within the first-token
//! timeout, or a silence longer than the idle timeout between pieces, is `Timeout`; a
//! stream cut off, holding a chunk that is not valid JSON or an error object, or ending
//! without the provider saying it was finished, is `Broken`. The API key is sent only
//! as a bearer token and never appears in `Debug` output or errors; neither do the
//! provider's error bodies.
//!
//! The HTTP client is reqwest (HTTP/1.1) on rustls with ring and the operating system's
//! certificates; the event stream is parsed by a small parser of this crate. With the
//! `test-support` feature, the `testing` module has a scripted fake provider.

mod bot;
mod config;
mod error;
mod sse;
mod stream;
#[cfg(feature = "test-support")]
pub mod testing;
mod title;
mod wire;

pub use bot::OpenAiBot;
pub use config::{BuildError, OpenAiConfig};
