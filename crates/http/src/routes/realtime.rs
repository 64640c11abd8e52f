//! `GET /api/ws`: a WebSocket carrying the user's events out and their commands in
//! (SPEC §10).

use std::time::Duration;

use actix_web::cookie::CookieJar;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message as Frame, MessageStream, Session};
use chatbot_domain::services::{Delivery, Subscription};
use chatbot_domain::{Change, ConversationId, Event, MessageId, MessageText, SessionKey, UserId};
use futures_core::Stream;
use serde::{Deserialize, Serialize};

use crate::State;
use crate::dto::{ConversationOut, MessageOut};
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::session::CurrentUser;

/// Close codes of the API's own (the 4000s are free for applications).
const SESSION_ENDED: u16 = 4001;
const TOO_SLOW: u16 = 4008;
/// Why a socket is closed with [`TOO_SLOW`]: it fell behind (its client reads too
/// slowly), or events were lost between instances; either way it missed some.
const MISSED: &str = "events were missed: reload through the API";

/// How long a closing socket waits for its client to take the close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Opens a WebSocket for the logged-in user.
#[utoipa::path(
    get,
    path = "/api/ws",
    operation_id = "open_websocket",
    tag = "realtime",
    summary = "Open a WebSocket for real-time events",
    description = "Upgrades to a WebSocket (JSON text frames) for the logged-in user whose \
        `Origin` is the server's own or allowed; otherwise 401 or 403 before the upgrade.\n\n\
        Server to client, for every change to your data made anywhere (another tab, another \
        device, another instance): `message.created`, `message.delta`, `message.updated`, \
        `conversation.created`, `conversation.updated`, `conversation.deleted`. Client to \
        server: `{\"type\":\"send\",\"conversation_id\",\"text\",\"client_id\"?}` (as \
        `POST .../messages`, same rules and limits), `{\"type\":\"stop\",\"message_id\"}`, \
        `{\"type\":\"ping\"}` (answered `{\"type\":\"pong\"}`); a refused command gets \
        `{\"type\":\"error\",\"code\",\"error\",\"client_id\"?}` and the socket stays open.\n\n\
        Closed with 4001 when the session ends (logout, expiry, revocation), 4008 when the \
        client reads too slowly (reload through the API), 1008 past the connections allowed \
        per user.",
    security(("session" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 400, description = "`bad_request`: not a WebSocket handshake.",
            body = ErrorBody),
        (status = 403, description = "`forbidden`: the page's `Origin` is neither the \
            server's own nor allowed.", body = ErrorBody),
    ),
)]
pub(super) async fn open(
    state: web::Data<State>,
    CurrentUser(user): CurrentUser,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key =
        session_key(&request, &state).ok_or_else(|| ApiError::of_kind(ErrorKind::Unauthorized))?;
    let subscription = state.services.realtime.subscribe(user);
    let (response, session, frames) = actix_ws::handle(&request, body).map_err(|error| {
        ApiError::new(
            ErrorKind::BadRequest,
            format!("Not a WebSocket handshake: {error}."),
        )
    })?;
    let frames = frames.max_frame_size(state.realtime.max_frame_bytes);
    match subscription {
        Ok(events) => {
            let socket = Socket {
                state: state.into_inner(),
                user,
                key,
                session,
                events,
            };
            actix_web::rt::spawn(socket.run(frames));
        }
        Err(refused) => {
            let reason = ApiError::from(refused).message().to_owned();
            actix_web::rt::spawn(close(session, CloseCode::Policy, reason));
        }
    }
    Ok(response)
}

/// The session key the request's cookie carries, once its signature is checked.
fn session_key(request: &HttpRequest, state: &State) -> Option<SessionKey> {
    let cookie = request.cookie(&state.realtime.cookie_name)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie.into_owned());
    let verified = jar
        .signed(&state.realtime.cookie_key)
        .get(&state.realtime.cookie_name)?;
    Some(SessionKey::new(verified.value().to_owned()))
}

/// How sockets behave, from the configuration.
#[derive(Clone)]
pub(crate) struct RealtimeConfig {
    pub(crate) cookie_name: String,
    pub(crate) cookie_key: actix_web::cookie::Key,
    /// How often an idle socket is pinged and its session checked; one that answers
    /// nothing for two of these is dropped.
    pub(crate) ping_every: Duration,
    /// How long one frame may take to leave before the client counts as too slow.
    pub(crate) send_timeout: Duration,
    pub(crate) max_frame_bytes: usize,
}

/// One open socket: its user, its session, and the user's events on their way.
struct Socket {
    state: std::sync::Arc<State>,
    user: UserId,
    key: SessionKey,
    session: Session,
    events: Subscription,
}

/// Why a socket ends.
enum End {
    Close(u16, &'static str),
    /// The client closed it, or the connection is gone.
    Gone,
}

impl Socket {
    async fn run(mut self, mut frames: MessageStream) {
        let ping_every = self.state.realtime.ping_every;
        let mut ticks = actix_web::rt::time::interval_at(
            actix_web::rt::time::Instant::now() + ping_every,
            ping_every,
        );
        let mut heard = actix_web::rt::time::Instant::now();
        let end = loop {
            let step = tokio::select! {
                frame = frames.recv() => Step::Frame(frame),
                delivery = next(&mut self.events) => Step::Delivery(delivery),
                _ = ticks.tick() => Step::Tick,
            };
            let outcome = match step {
                Step::Frame(Some(Ok(frame))) => {
                    heard = actix_web::rt::time::Instant::now();
                    self.take(frame).await
                }
                Step::Frame(_) => Err(End::Gone),
                Step::Delivery(Delivery::Event(event)) => self.forward(event).await,
                Step::Delivery(Delivery::Overflowed) => Err(End::Close(TOO_SLOW, MISSED)),
                Step::Tick => self.check(heard.elapsed() > 2 * ping_every).await,
            };
            if let Err(end) = outcome {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            let closing = close(self.session, CloseCode::Other(code), reason.to_owned());
            // A client too slow to read gets the close frame once it reads again; one
            // that never does is dropped after a while.
            let _ = actix_web::rt::time::timeout(CLOSE_WAIT, closing).await;
        }
    }

    /// A frame from the client.
    async fn take(&mut self, frame: Frame) -> Result<(), End> {
        match frame {
            Frame::Text(text) => {
                let reply = self.command(&text).await;
                match reply {
                    Some(reply) => self.send(&reply).await,
                    None => Ok(()),
                }
            }
            Frame::Ping(bytes) => self.session.pong(&bytes).await.map_err(|_| End::Gone),
            Frame::Close(_) => Err(End::Gone),
            Frame::Binary(_) => {
                let refused = Outgoing::refused(
                    None,
                    &ApiError::new(ErrorKind::BadRequest, "Send JSON text frames."),
                );
                self.send(&refused).await
            }
            Frame::Pong(_) | Frame::Continuation(_) | Frame::Nop => Ok(()),
        }
    }

    /// Runs a command; what to answer, if anything.
    async fn command(&self, text: &str) -> Option<Outgoing<'static>> {
        let command: Command = match serde_json::from_str(text) {
            Ok(command) => command,
            Err(error) => {
                let refused = ApiError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "Not a command: {error}. Send {{\"type\": \"send\" | \"stop\" | \"ping\", ...}}."
                    ),
                );
                return Some(Outgoing::refused(None, &refused));
            }
        };
        let chat = &self.state.services.chat;
        match command {
            Command::Ping => Some(Outgoing::Pong),
            Command::Send {
                conversation_id,
                text,
                client_id,
            } => {
                let started = async {
                    if let Some(limits) = &self.state.limits {
                        limits.check_message(self.user)?;
                    }
                    let text = MessageText::parse_with_limit(&text, self.state.max_message_chars)?;
                    let id = ConversationId::new(conversation_id);
                    // The reply reaches this socket, and every other of the user's,
                    // as events; its feed here is not needed.
                    chat.start_reply(self.user, id, text)
                        .await
                        .map_err(ApiError::from)?;
                    Ok::<(), ApiError>(())
                };
                started
                    .await
                    .err()
                    .map(|refused| Outgoing::refused(client_id, &refused))
            }
            Command::Stop { message_id } => {
                let stopped = async {
                    if let Some(limits) = &self.state.limits {
                        limits.check_write(self.user)?;
                    }
                    chat.stop_reply(self.user, None, MessageId::new(message_id))
                        .await
                        .map_err(ApiError::from)
                };
                stopped
                    .await
                    .err()
                    .map(|refused| Outgoing::refused(None, &refused))
            }
        }
    }

    /// An event of the user's, on its way to the client.
    async fn forward(&mut self, event: Event) -> Result<(), End> {
        match Outgoing::of(&event) {
            Some(frame) => self.send(&frame).await,
            // Some of the user's sessions ended: is this one of them?
            None => self.check(false).await,
        }
    }

    /// Whether the socket may go on: its session live, its client not silent too long.
    async fn check(&mut self, silent: bool) -> Result<(), End> {
        match self.state.services.sessions.is_live(&self.key).await {
            Ok(false) => return Err(End::Close(SESSION_ENDED, "the session ended: log in again")),
            Ok(true) => {}
            // The database may be back at the next check; the socket stays.
            Err(error) => tracing::warn!(%error, "could not check a WebSocket's session"),
        }
        if silent {
            return Err(End::Gone);
        }
        self.session.ping(b"").await.map_err(|_| End::Gone)
    }

    /// Sends `frame`, within the send timeout: a client that does not read is too slow.
    async fn send(&mut self, frame: &Outgoing<'_>) -> Result<(), End> {
        // Serialising these types cannot fail: no maps with non-string keys, no I/O.
        let text = serde_json::to_string(frame).unwrap_or_default();
        let timeout = self.state.realtime.send_timeout;
        match actix_web::rt::time::timeout(timeout, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(End::Gone),
            Err(_elapsed) => Err(End::Close(TOO_SLOW, MISSED)),
        }
    }
}

enum Step {
    Frame(Option<Result<Frame, actix_ws::ProtocolError>>),
    Delivery(Delivery),
    Tick,
}

/// The next delivery; a subscription never ends by itself.
async fn next(events: &mut Subscription) -> Delivery {
    let delivery = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *events).poll_next(cx)).await;
    delivery.unwrap_or(Delivery::Overflowed)
}

async fn close(session: Session, code: CloseCode, reason: String) {
    let _ = session
        .close(Some(CloseReason {
            code,
            description: Some(reason),
        }))
        .await;
}

/// A command from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Command {
    Send {
        conversation_id: i64,
        text: String,
        #[serde(default)]
        client_id: Option<String>,
    },
    Stop {
        message_id: i64,
    },
    Ping,
}

/// A frame to the client.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Outgoing<'a> {
    #[serde(rename = "message.created")]
    MessageCreated {
        conversation_id: i64,
        message: MessageOut<'a>,
    },
    #[serde(rename = "message.delta")]
    MessageDelta {
        conversation_id: i64,
        message_id: i64,
        seq: u64,
        text: &'a str,
    },
    #[serde(rename = "message.updated")]
    MessageUpdated {
        conversation_id: i64,
        message: MessageOut<'a>,
    },
    #[serde(rename = "conversation.created")]
    ConversationCreated { conversation: ConversationOut<'a> },
    #[serde(rename = "conversation.updated")]
    ConversationUpdated { conversation: ConversationOut<'a> },
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted { conversation_id: i64 },
    #[serde(rename = "pong")]
    Pong,
    #[serde(rename = "error")]
    Error {
        code: &'static str,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl<'a> Outgoing<'a> {
    /// The frame that tells the client of `event`; `None` for a change with no frame
    /// of its own (sessions ending).
    fn of(event: &'a Event) -> Option<Self> {
        Some(match &event.change {
            Change::MessageCreated(message) => Self::MessageCreated {
                conversation_id: message.conversation_id.get(),
                message: message.into(),
            },
            Change::MessageDelta {
                conversation_id,
                delta,
            } => Self::MessageDelta {
                conversation_id: conversation_id.get(),
                message_id: delta.message_id.get(),
                seq: delta.seq,
                text: &delta.text,
            },
            Change::MessageUpdated(message) => Self::MessageUpdated {
                conversation_id: message.conversation_id.get(),
                message: message.into(),
            },
            Change::ConversationCreated(conversation) => Self::ConversationCreated {
                conversation: conversation.into(),
            },
            Change::ConversationUpdated(conversation) => Self::ConversationUpdated {
                conversation: conversation.into(),
            },
            Change::ConversationDeleted(id) => Self::ConversationDeleted {
                conversation_id: id.get(),
            },
            Change::SessionsEnded => return None,
        })
    }
}

impl Outgoing<'static> {
    fn refused(client_id: Option<String>, refused: &ApiError) -> Self {
        Self::Error {
            code: refused.kind().code(),
            error: refused.message().to_owned(),
            client_id,
        }
    }
}
