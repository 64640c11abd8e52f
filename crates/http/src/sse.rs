//! Server-sent events: a reply's events as a `text/event-stream` body (SPEC §9).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::rt::time::{Sleep, sleep};
use actix_web::web::Bytes;
use chatbot_domain::{Message, ReplyEvent, ReplyFailure, ReplyFeed};
use futures_core::Stream;
use serde::Serialize;

use crate::dto::{DeltaOut, MessageOut};
use crate::error::{ErrorBody, ErrorKind};

/// The media type of an event stream.
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// Whether the request's `Accept` header asks for an event stream.
pub(crate) fn wants_events(request: &actix_web::HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            let mut parts = media.split(';').map(str::trim);
            let named = parts
                .next()
                .is_some_and(|kind| kind.eq_ignore_ascii_case(EVENT_STREAM));
            // `q=0` says "not this one".
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            named && !refused
        })
}

/// A `200 text/event-stream` response: `first` (already encoded events), then the
/// events of `feed`, with a keep-alive comment whenever nothing was sent for
/// `keep_alive`.
pub(crate) fn response(first: Vec<Bytes>, feed: ReplyFeed, keep_alive: Duration) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM)))
        // A proxy (nginx) must pass each event on at once rather than buffer them.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(EventStream {
            first: first.into_iter(),
            feed,
            keep_alive,
            idle: Box::pin(sleep(keep_alive)),
        })
}

/// An event named `name` with a JSON `data` line.
pub(crate) fn event(name: &str, id: Option<u64>, data: &impl Serialize) -> Bytes {
    // Serialising these types cannot fail: no maps with non-string keys, no I/O.
    let data = serde_json::to_string(data).unwrap_or_default();
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("event: {name}\n{id}data: {data}\n\n"))
}

/// The `message` event: the user's message as stored.
pub(crate) fn message_event(message: &Message) -> Bytes {
    event("message", None, &MessageOut::from(message))
}

/// The encoded form of a reply event.
fn encode(reply: &ReplyEvent) -> Bytes {
    match reply {
        ReplyEvent::Started(message) => event("reply", None, &MessageOut::from(message)),
        ReplyEvent::Delta(delta) => event("delta", Some(delta.seq), &DeltaOut::from(delta)),
        ReplyEvent::Done(message) => event("done", None, &MessageOut::from(message)),
        ReplyEvent::Failed { failure, .. } => {
            let kind = match failure {
                ReplyFailure::Bot(_) | ReplyFailure::BrokeOff => ErrorKind::BotUnavailable,
                ReplyFailure::Gone => ErrorKind::NotFound,
                ReplyFailure::Unstored => ErrorKind::Unavailable,
            };
            let message = match failure {
                ReplyFailure::Gone => "The conversation was deleted.",
                _ => kind.default_message(),
            };
            event(
                "error",
                None,
                &ErrorBody {
                    error: message,
                    code: kind.code(),
                },
            )
        }
    }
}

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The body: it takes the next event only when the client has taken the last one,
/// so a slow client holds nothing but its place in the reply.
struct EventStream {
    first: std::vec::IntoIter<Bytes>,
    feed: ReplyFeed,
    keep_alive: Duration,
    idle: Pin<Box<Sleep>>,
}

impl Stream for EventStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.next() {
            return Poll::Ready(Some(Ok(first)));
        }
        let next = match self.feed.as_mut().poll_next(cx) {
            Poll::Ready(Some(reply)) => encode(&reply),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Bytes::from_static(KEEP_ALIVE),
                Poll::Pending => return Poll::Pending,
            },
        };
        let deadline = actix_web::rt::time::Instant::now() + self.keep_alive;
        self.idle.as_mut().reset(deadline);
        Poll::Ready(Some(Ok(next)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn accepting(accept: &str) -> bool {
        wants_events(
            &TestRequest::default()
                .insert_header(("Accept", accept))
                .to_http_request(),
        )
    }

    #[test]
    fn an_event_stream_is_wanted_when_accept_names_it_without_refusing_it() {
        assert!(accepting("text/event-stream"));
        assert!(accepting("application/json, Text/Event-Stream;q=0.5"));
        assert!(!accepting("application/json"));
        assert!(!accepting("*/*"));
        assert!(!accepting("text/event-stream;q=0, application/json"));
        assert!(!wants_events(&TestRequest::default().to_http_request()));
    }

    #[test]
    fn events_are_one_json_line_each() {
        let bytes = event("delta", Some(3), &serde_json::json!({"text": "two\nlines"}));
        assert_eq!(
            bytes,
            "event: delta\nid: 3\ndata: {\"text\":\"two\\nlines\"}\n\n"
        );
    }
}
