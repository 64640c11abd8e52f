//! The adapter: requests, retries and timeouts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatbot_domain::ports::Bot;
use chatbot_domain::{BotError, ReplyContext, ReplyStream};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use tokio::time::{Instant, timeout_at};

use crate::config::{BuildError, OpenAiConfig, Redacted};
use crate::error::{Fault, request_failed};
use crate::stream::{Pieces, Reader, deadline_after};
use crate::title::{TITLE_MAX_TOKENS, TITLE_PROMPT, clean_title, title_request};
use crate::wire::{ChatMessage, ChatRequest, Completion, reply_messages};

/// Most requests for one reply or title, the first included, when the provider keeps
/// answering 429 or 503 with a short `Retry-After`.
const MAX_ATTEMPTS: u32 = 8;
/// The wait before the first retry when the provider gives no `Retry-After`; it
/// doubles at each retry, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between retries without a `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// The largest non-streamed answer (a title) read.
const MAX_COMPLETION_BYTES: usize = 256 * 1024;

/// A bot answering through an OpenAI-compatible Chat Completions server.
///
/// Cheap to share behind an `Arc`: requests reuse the client's connections.
///
/// ```
/// use chatbot_openai::{OpenAiBot, OpenAiConfig};
///
/// let mut config = OpenAiConfig::new("http://127.0.0.1:11434/v1", "llama3.2");
/// config.api_key = Some("sk-secret".to_owned());
/// let bot = OpenAiBot::new(config).unwrap();
/// assert!(!format!("{bot:?}").contains("sk-secret"));
///
/// let refused = OpenAiBot::new(OpenAiConfig::new("localhost:11434", "llama3.2"));
/// assert!(refused.unwrap_err().to_string().contains("http:// or https://"));
/// ```
pub struct OpenAiBot {
    client: reqwest::Client,
    endpoint: Url,
    /// `Bearer <key>`, marked sensitive, when a key is set.
    authorization: Option<HeaderValue>,
    config: OpenAiConfig,
}

impl OpenAiBot {
    /// A bot asking `config.model` at `config.base_url`.
    ///
    /// # Errors
    /// [`BuildError`] when the base URL is not an `http` or `https` URL (or holds a
    /// user name, password, query or fragment), no model is named, the key cannot be
    /// sent in a header, or the TLS configuration cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, BuildError> {
        if config.model.trim().is_empty() {
            return Err(BuildError::MissingModel);
        }
        let endpoint = endpoint(&config.base_url)?;
        let authorization = match config.api_key.as_deref() {
            Some(key) if !key.is_empty() => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| BuildError::InvalidApiKey)?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => None,
        };
        let tls = tls_config().map_err(|error| BuildError::Client(Box::new(error)))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            // A redirect is an error status: a POST must not silently become a GET,
            // nor the key follow it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chatbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| BuildError::Client(Box::new(error)))?;
        Ok(Self {
            client,
            endpoint,
            authorization,
            config,
        })
    }

    /// Posts `body` until the provider answers with a success status, retrying 429
    /// and 503 while `deadline` allows.
    async fn post(
        &self,
        body: &ChatRequest<'_>,
        accept: &'static str,
        deadline: Instant,
    ) -> Result<Response, BotError> {
        let body = serde_json::to_vec(body)
            .map_err(|error| BotError::Broken(std::sync::Arc::new(error)))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(self.endpoint.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, accept)
                .body(body.clone());
            if let Some(authorization) = &self.authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            let response = timeout_at(deadline, request.send())
                .await
                .map_err(|_| BotError::Timeout)?
                .map_err(request_failed)?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            // The body is not read: it may echo the request, or a key.
            let wait = retry_after(&response).unwrap_or_else(|| backoff(attempt));
            drop(response);
            let retryable = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            if retryable && attempt < MAX_ATTEMPTS && Instant::now() + wait < deadline {
                tracing::info!(
                    status = status.as_u16(),
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    attempt,
                    "the model provider is busy; retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(BotError::Status {
                status: status.as_u16(),
            });
        }
    }
}

#[async_trait]
impl Bot for OpenAiBot {
    async fn reply(&self, context: ReplyContext) -> Result<ReplyStream, BotError> {
        let first_piece_by = deadline_after(self.config.first_token_timeout);
        let request = ChatRequest {
            model: &self.config.model,
            messages: reply_messages(&context),
            stream: true,
            max_tokens: self.config.max_tokens,
            temperature: self.config.temperature,
        };
        let response = self
            .post(&request, "text/event-stream", first_piece_by)
            .await?;
        let reader = Reader::new(response, first_piece_by, self.config.idle_timeout);
        Ok(Box::pin(Pieces::new(reader)))
    }

    async fn title(&self, message: &str, reply: &str) -> Result<String, BotError> {
        let deadline = deadline_after(self.config.first_token_timeout);
        let conversation = title_request(message, reply);
        let request = ChatRequest {
            model: &self.config.model,
            messages: vec![
                ChatMessage::system(TITLE_PROMPT),
                ChatMessage::user(&conversation),
            ],
            stream: false,
            max_tokens: TITLE_MAX_TOKENS.min(self.config.max_tokens),
            temperature: self.config.temperature,
        };
        let response = self.post(&request, "application/json", deadline).await?;
        let body = timeout_at(deadline, read_body(response, MAX_COMPLETION_BYTES))
            .await
            .map_err(|_| BotError::Timeout)??;
        let completion: Completion =
            serde_json::from_slice(&body).map_err(|error| Fault::BadCompletion(error.into()))?;
        let content = completion
            .choices
            .into_iter()
            .find(|choice| choice.index == 0)
            .and_then(|choice| choice.message.content)
            .unwrap_or_default();
        clean_title(&content).ok_or(BotError::Empty)
    }
}

impl fmt::Debug for OpenAiBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBot")
            .field("endpoint", &self.endpoint.as_str())
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| Redacted),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `{base_url}/chat/completions`, if `base_url` is a usable http(s) URL.
fn endpoint(base_url: &str) -> Result<Url, BuildError> {
    let base_url = base_url.trim();
    if !base_url.is_empty() && !base_url.contains("://") {
        return Err(BuildError::UnusableBaseUrl(
            "must start with http:// or https://",
        ));
    }
    let url = Url::parse(base_url).map_err(|error| BuildError::InvalidBaseUrl {
        // A URL with credentials in it is not repeated.
        url: if base_url.contains('@') {
            "[redacted]".to_owned()
        } else {
            base_url.to_owned()
        },
        reason: error.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BuildError::UnusableBaseUrl(
            "must start with http:// or https://",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BuildError::UnusableBaseUrl(
            "must not hold a user name or password: give the API key instead",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BuildError::UnusableBaseUrl(
            "must not have a query (?...) or a fragment (#...)",
        ));
    }
    let endpoint = format!("{}/chat/completions", url.as_str().trim_end_matches('/'));
    Url::parse(&endpoint).map_err(|error| BuildError::InvalidBaseUrl {
        url: base_url.to_owned(),
        reason: error.to_string(),
    })
}

/// rustls on ring, verifying servers with the operating system's certificates.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}

/// The wait a `Retry-After` header in seconds asks for.
fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: f64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(24.0 * 3600.0)))
}

/// The wait before retry `attempt` (1 for the first) without a `Retry-After`.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(8))
        .min(MAX_BACKOFF)
}

/// The whole body of `response`, if it has at most `limit` bytes.
async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, BotError> {
    let mut body = Vec::new();
    while let Some(bytes) = response.chunk().await.map_err(Fault::Connection)? {
        if body.len() + bytes.len() > limit {
            return Err(Fault::TooLarge { limit }.into());
        }
        body.extend_from_slice(&bytes);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_below_the_base_url() {
        for base in [
            "http://127.0.0.1:11434/v1",
            "http://127.0.0.1:11434/v1/",
            " http://127.0.0.1:11434/v1 ",
        ] {
            assert_eq!(
                endpoint(base).unwrap().as_str(),
                "http://127.0.0.1:11434/v1/chat/completions"
            );
        }
        assert_eq!(
            endpoint("https://api.openai.com/v1").unwrap().as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://localhost:8080").unwrap().as_str(),
            "http://localhost:8080/chat/completions"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused_clearly() {
        let message = |url: &str| endpoint(url).unwrap_err().to_string();
        assert!(message("http://[::1/v1").contains("not a valid URL"));
        assert!(message("not a url").contains("http:// or https://"));
        assert!(message("ftp://example.com/v1").contains("http:// or https://"));
        assert!(message("localhost:11434/v1").contains("http:// or https://"));
        assert!(message("http://example.com/v1?key=1").contains("query"));
        let with_password = message("https://user:hunter2@example.com/v1");
        assert!(with_password.contains("API key"));
        assert!(!with_password.contains("hunter2"));
        let unparsable = message("https://user:hunter2@exa mple.com/v1");
        assert!(!unparsable.contains("hunter2"), "{unparsable}");
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_a_limit() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        assert!(deadline_after(Duration::MAX) > Instant::now());
    }
}
