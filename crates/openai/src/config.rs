//! What the adapter is configured with, and why a configuration can be refused.

use std::fmt;
use std::time::Duration;

/// How to reach the provider and what to ask it: plain values, built by the server
/// from its settings.
///
/// Its `Debug` output shows whether a key is set, never the key.
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The API root, such as `http://127.0.0.1:11434/v1` (Ollama) or
    /// `https://api.openai.com/v1`; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The model to ask, such as `llama3.2` or `gpt-4o-mini`.
    pub model: String,
    /// The API key, sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// The most tokens a reply may have (`max_tokens`).
    pub max_tokens: u32,
    /// The sampling temperature; the provider's default when `None`.
    pub temperature: Option<f32>,
    /// How long connecting to the provider may take.
    pub connect_timeout: Duration,
    /// How long from sending the request (retries included) to the first piece of text.
    pub first_token_timeout: Duration,
    /// How long the provider may stay silent between two pieces of text.
    pub idle_timeout: Duration,
}

impl OpenAiConfig {
    /// [`max_tokens`](Self::max_tokens) unless set otherwise.
    pub const DEFAULT_MAX_TOKENS: u32 = 1024;
    /// [`connect_timeout`](Self::connect_timeout) unless set otherwise.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// [`first_token_timeout`](Self::first_token_timeout) unless set otherwise.
    pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(60);
    /// [`idle_timeout`](Self::idle_timeout) unless set otherwise.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

    /// `model` at `base_url`, without a key, with the default limits and timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            temperature: None,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            first_token_timeout: Self::DEFAULT_FIRST_TOKEN_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| Redacted))
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// Stands for a secret in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why an [`OpenAiBot`](crate::OpenAiBot) could not be built. The texts never hold
/// the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The base URL is not a URL.
    #[error("the provider's base URL {url:?} is not a valid URL ({reason})")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The base URL is a URL, but not one the adapter can use; the text says why.
    #[error("the provider's base URL {0}")]
    UnusableBaseUrl(&'static str),
    /// No model was named.
    #[error("no model is named: the provider needs one (such as `llama3.2` or `gpt-4o-mini`)")]
    MissingModel,
    /// The API key cannot be sent in an HTTP header.
    #[error("the API key holds characters an HTTP header cannot carry")]
    InvalidApiKey,
    /// The HTTP client or its TLS configuration could not be set up.
    #[error("the HTTP client for the provider could not be set up")]
    Client(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}
