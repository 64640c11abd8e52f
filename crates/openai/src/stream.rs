//! The reply as a stream of text pieces, read from the provider's event stream.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use chatbot_domain::BotError;
use futures_core::Stream;
use tokio::time::{Instant, timeout_at};

use crate::error::Fault;
use crate::sse::SseParser;
use crate::wire::Chunk;

/// Reads pieces of text from a provider's streamed answer.
///
/// It owns the response: dropping it closes the connection, which is how the provider
/// learns that nobody wants the rest.
#[derive(Debug)]
pub(crate) struct Reader {
    response: reqwest::Response,
    parser: SseParser,
    /// The data of events received and not yet interpreted.
    events: VecDeque<String>,
    /// Until the first piece: when the first-token timeout runs out.
    first_piece_by: Option<Instant>,
    idle_timeout: Duration,
    /// The provider said the reply is complete.
    finished: bool,
    /// The response body has ended.
    ended: bool,
}

/// How long the rest of a body is read after the reply is complete.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How much of the rest of a body is read after the reply is complete.
const DRAIN_BYTES: usize = 64 * 1024;

/// The instant `timeout` from now, or a far one if that is beyond what can be told.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// What the next step of the reply is.
type Item = Result<String, BotError>;

impl Reader {
    /// Reads `response`, whose first piece must come by `first_piece_by`, and each
    /// next piece within `idle_timeout` of being asked for.
    pub(crate) fn new(
        response: reqwest::Response,
        first_piece_by: Instant,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            response,
            parser: SseParser::default(),
            events: VecDeque::new(),
            first_piece_by: Some(first_piece_by),
            idle_timeout,
            finished: false,
            ended: false,
        }
    }

    /// The next piece; `None` once the reply is complete. After an error, there is
    /// nothing more to read.
    async fn next(mut self) -> (Option<Item>, Self) {
        let deadline = self
            .first_piece_by
            .unwrap_or_else(|| deadline_after(self.idle_timeout));
        loop {
            while let Some(data) = self.events.pop_front() {
                match self.interpret(&data) {
                    Ok(Some(piece)) => {
                        self.first_piece_by = None;
                        return (Some(Ok(piece)), self);
                    }
                    Ok(None) => {}
                    Err(fault) => return (Some(Err(fault.into())), self),
                }
                if self.finished {
                    break;
                }
            }
            if self.finished {
                return (None, self);
            }
            if self.ended {
                return (Some(Err(Fault::EndedEarly.into())), self);
            }
            match timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return (Some(Err(BotError::Timeout)), self),
                Ok(Err(error)) => return (Some(Err(Fault::Connection(error).into())), self),
                Ok(Ok(Some(bytes))) => {
                    if let Err(error) = self.parser.feed(&bytes, &mut self.events) {
                        return (Some(Err(Fault::Sse(error).into())), self);
                    }
                }
                Ok(Ok(None)) => {
                    self.ended = true;
                    if let Err(error) = self.parser.finish(&mut self.events) {
                        return (Some(Err(Fault::Sse(error).into())), self);
                    }
                }
            }
        }
    }

    /// Reads the rest of the body (a usage chunk, `[DONE]`, its end) after the reply is
    /// complete, for a little while, in the background: a body read to its end leaves
    /// the connection free for the next request instead of closing it. The provider
    /// has finished generating by then, so nothing is kept running.
    fn drain_in_background(mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.ended {
            return;
        }
        runtime.spawn(async move {
            let mut left = DRAIN_BYTES;
            let drain = async {
                while let Ok(Some(bytes)) = self.response.chunk().await {
                    left = left.checked_sub(bytes.len())?;
                }
                Some(())
            };
            // Whatever happens, the response then goes, and the connection with it
            // unless the body ended.
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }

    /// The text an event adds, if any; marks the reply finished when it says so.
    fn interpret(&mut self, data: &str) -> Result<Option<String>, Fault> {
        if data.trim() == "[DONE]" {
            self.finished = true;
            return Ok(None);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| Fault::BadChunk(e.into()))?;
        if chunk.is_error() {
            return Err(Fault::ProviderError);
        }
        let mut piece = String::new();
        for choice in chunk.choices.into_iter().flatten().filter(|c| c.index == 0) {
            if let Some(content) = choice.delta.and_then(|delta| delta.content) {
                piece.push_str(&content);
            }
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
        }
        Ok((!piece.is_empty()).then_some(piece))
    }
}

/// The next step of a [`Pieces`] stream: the item and the reader for the one after.
type Step = Pin<Box<dyn Future<Output = (Option<Item>, Reader)> + Send>>;

/// A [`Reader`] as a [`Stream`]: it ends after the reply is complete or after its
/// first error.
pub(crate) struct Pieces {
    step: Option<Step>,
}

impl Pieces {
    pub(crate) fn new(reader: Reader) -> Self {
        Self {
            step: Some(Box::pin(reader.next())),
        }
    }
}

impl std::fmt::Debug for Pieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pieces")
            .field("ended", &self.step.is_none())
            .finish_non_exhaustive()
    }
}

impl Stream for Pieces {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let Some(step) = self.step.as_mut() else {
            return Poll::Ready(None);
        };
        let (item, reader) = ready!(step.as_mut().poll(cx));
        // Once the reply is broken, the reader (and with it the connection) goes at
        // once, not when the stream is dropped; once it is complete, after reading
        // what is left of the body.
        self.step = match item {
            Some(Ok(_)) => Some(Box::pin(reader.next())),
            None => {
                reader.drain_in_background();
                None
            }
            Some(Err(_)) => None,
        };
        Poll::Ready(item)
    }
}
