//! Users' events across instances, over PostgreSQL `LISTEN`/`NOTIFY`: [`PgEvents`].

mod wire;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chatbot_domain::ports::EventPublisher;
use chatbot_domain::services::EventHub;
use chatbot_domain::{Change, Event, StorageError};
use diesel::connection::SimpleConnection;
use diesel::pg::PgNotification;
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Text};
use diesel::{Connection, PgConnection};

use crate::DatabaseUrl;
use crate::rows::{ConversationRow, MessageRow};
use crate::schema::{conversations, messages};
use wire::{Assembler, Decoded, Reference, ReferenceKind};

/// The channel of the events of the tables in the `public` schema; see
/// [`PgEvents`] for other schemas.
pub const CHANNEL: &str = "chatbot_events";

/// How often the listener looks for notifications once none has come for
/// [`BUSY_FOR`]: the most the first event of a burst waits, on top of the database's
/// round trip, before it is delivered.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How often the listener looks for notifications within [`BUSY_FOR`] of the last
/// one: the most a delta of a reply streaming waits.
pub const BUSY_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// How long after a notification the listener looks every [`BUSY_POLL_INTERVAL`].
pub const BUSY_FOR: Duration = Duration::from_millis(200);

/// How long dropping the last [`PgEvents`] waits for its threads to end.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long the listener stays silent before it checks that its connection still
/// answers: a server gone without closing the connection sends nothing, and only a
/// query finds out.
const CHECK_AFTER: Duration = Duration::from_secs(10);

/// Most payloads, and bytes of payloads, sent in one statement.
const BATCH_PAYLOADS: usize = 500;
const BATCH_BYTES: usize = 1 << 20;

/// Most notifications the listener takes before it looks whether it should stop.
const READ_BURST: usize = 1_000;

/// How often, at most, a recurring problem is logged again.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How [`PgEvents`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOptions {
    /// Events waiting to be sent; one more is dropped (with a warning) rather than
    /// waited for.
    pub queue_capacity: usize,
    /// The `application_name` of the two connections, as `pg_stat_activity` shows
    /// it, followed by `-listen` and `-notify`.
    pub application_name: String,
}

impl Default for EventOptions {
    /// 10,000 events; `chatbot-events`.
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            application_name: "chatbot-events".to_owned(),
        }
    }
}

/// [`PgEvents`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The database is not PostgreSQL.
    #[error(
        "events across instances need PostgreSQL; on SQLite there is one instance, \
         and its EventHub delivers events itself"
    )]
    NotPostgres,
    /// A connection could not be opened.
    #[error("cannot connect to the database at {url} for events: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What the driver said.
        #[source]
        source: diesel::ConnectionError,
    },
    /// A connection was opened but could not be set up (naming it, `LISTEN`).
    #[error("cannot set up the events connection: {0}")]
    Setup(#[source] diesel::result::Error),
    /// A thread could not be started.
    #[error("cannot start an events thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Users' events across instances, over PostgreSQL `LISTEN`/`NOTIFY`.
///
/// [`PgEvents`] is the [`EventPublisher`] of an instance on PostgreSQL. Every
/// instance on the database, this one included, hears every event through its own
/// listener and hands it to its [`EventHub`], which passes it to the owner's
/// connections in that process. Publishing therefore never delivers locally by
/// itself: an event reaches this instance's connections the way it reaches the
/// others', once, and in the same order.
///
/// # Two connections, two threads
///
/// - **Sending.** [`publish`](EventPublisher::publish) encodes the event and puts it
///   on a bounded queue ([`EventOptions::queue_capacity`]), never waiting: when the
///   queue is full the event is dropped, with a warning at most every ten seconds.
///   One thread takes the queue in order and sends what has gathered in one
///   statement, `SELECT pg_notify(channel, p) FROM unnest($1) WITH ORDINALITY … ORDER
///   BY n`: one transaction, whose notifications PostgreSQL delivers in the order they
///   were made. One connection keeps the events of this process in the order they
///   were published.
/// - **Listening.** One thread `LISTEN`s on a connection of its own, reads each
///   payload, reads back from the database what was too long to travel (see below),
///   and [delivers](EventHub::deliver) it. diesel's `notifications_iter` reads what
///   has reached the socket without waiting for more (libpq's `PQconsumeInput`), and
///   diesel offers nothing to wait on the socket with (and this crate forbids the
///   `unsafe` that libpq's socket would take), so the thread looks again after a
///   pause: [`BUSY_POLL_INTERVAL`] (1 ms) for [`BUSY_FOR`] (200 ms) after a
///   notification, since a reply's deltas come in a stream, and [`POLL_INTERVAL`]
///   (10 ms) once things are quiet. An event thus waits up to 1 ms more during a
///   stream, up to 10 ms for the first of a burst; an idle listener costs one
///   non-blocking read per 10 ms.
///
/// # Payloads
///
/// PostgreSQL refuses a payload of 8,000 bytes or more. A payload is a compact JSON
/// of the event (`{"v":1,"o":<owner>,"k":"message.delta",…}`), at most 7,500 bytes. A
/// message or conversation too long for that travels as a reference (owner, kind,
/// id, conversation) and the listener reads it from the database, checking the owner,
/// before delivering it: what arrives is the row as it is then, which for a user's
/// message or a finished reply is what was published. A delta is never dropped for
/// its size: the domain cuts deltas to 1 KiB, which fits even if every byte is
/// escaped six times over; a longer one travels in parts that the listener joins. A
/// payload this version cannot read (another release's) is logged and skipped.
///
/// # Channel
///
/// Events are scoped to the data they describe: the channel is [`CHANNEL`],
/// `chatbot_events`, for the tables in the `public` schema, and
/// `chatbot_events:<schema>` when the connection's `search_path` puts them in
/// another (each schema has its own user ids, so events of one must not reach the
/// users of another; the tests give each test a schema of its own). Instances that
/// share the tables share the channel.
///
/// # When the database goes away
///
/// Either thread that loses its connection (a database restart, a killed backend)
/// logs one warning, reconnects after 100 ms, doubling the wait up to 5 s, and logs
/// one line when it is back; the listener `LISTEN`s again. Events published
/// meanwhile wait in the queue, up to its bound, and are sent once the sender is
/// back. Events sent while the *listener* was away are not heard by this instance:
/// PostgreSQL keeps notifications only for the sessions listening when they are
/// sent; so once it listens again, every connection of the hub is told it missed
/// events (a WebSocket is closed with 4008, and its client reloads). A batch whose sending failed with the connection is sent again on the new
/// one; if the failure came after PostgreSQL committed it, its events arrive twice.
///
/// # Lifetime
///
/// [`PgEvents`] is cheap to clone; clones share the connections and threads. Dropping
/// the last one stops both threads: the sender sends what is queued first, if it is
/// connected. The drop waits up to [`SHUTDOWN_GRACE`] for them, so that a process
/// that drops its publisher before it exits has no thread inside libpq (and OpenSSL)
/// while the process tears down.
#[derive(Debug, Clone)]
pub struct PgEvents {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// `None` only while dropping: dropping it tells the sender nothing more comes.
    queue: Option<SyncSender<Vec<String>>>,
    stop: Arc<Stop>,
    channel: String,
    dropped: Throttled,
}

impl PgEvents {
    /// [`start_with`](Self::start_with) the [default options](EventOptions::default).
    ///
    /// # Errors
    /// As [`start_with`](Self::start_with).
    pub fn start(url: &DatabaseUrl, hub: EventHub) -> Result<Self, EventsError> {
        Self::start_with(url, hub, EventOptions::default())
    }

    /// Opens the listening and the sending connection to `url`, `LISTEN`s, and starts
    /// their threads; events heard from then on go to `hub`. Blocks until both
    /// connections are open, so that a wrong URL stops start-up with the driver's
    /// reason, and an event published once this returns reaches this instance too.
    ///
    /// # Errors
    /// [`EventsError::NotPostgres`] for a SQLite URL: there, give the services the
    /// [`EventHub`] itself as their publisher. Otherwise why a connection could not be
    /// opened or set up, or a thread started.
    pub fn start_with(
        url: &DatabaseUrl,
        hub: EventHub,
        options: EventOptions,
    ) -> Result<Self, EventsError> {
        let DatabaseUrl::Postgres(raw) = url else {
            return Err(EventsError::NotPostgres);
        };
        let connect = |role: &str| {
            let mut connection =
                PgConnection::establish(raw).map_err(|source| EventsError::Connect {
                    url: url.to_string(),
                    source,
                })?;
            name_connection(&mut connection, &options.application_name, role)
                .map_err(EventsError::Setup)?;
            Ok::<_, EventsError>(connection)
        };
        let mut listening = connect(LISTEN_ROLE)?;
        let channel = channel_of(&mut listening).map_err(EventsError::Setup)?;
        listen(&mut listening, &channel).map_err(EventsError::Setup)?;
        let mut sending = connect(NOTIFY_ROLE)?;
        send_unflushed(&mut sending).map_err(EventsError::Setup)?;

        let (queue, queued) = mpsc::sync_channel(options.queue_capacity.max(1));
        let stop = Arc::new(Stop::default());
        let link = Link {
            url: raw.clone(),
            application_name: options.application_name,
            channel: channel.clone(),
            stop: Arc::clone(&stop),
        };
        let listener = Listener {
            link: link.clone(),
            hub,
            assembler: Assembler::default(),
            unreadable: Throttled::default(),
        };
        let sender = Sender { link, queued };
        stop.spawn("events-listen", move || listener.run(listening))?;
        if let Err(error) = stop.spawn("events-notify", move || sender.run(sending)) {
            stop.stop();
            return Err(error);
        }
        Ok(Self {
            shared: Arc::new(Shared {
                queue: Some(queue),
                stop,
                channel,
                dropped: Throttled::default(),
            }),
        })
    }

    /// The channel this instance sends and listens on.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }
}

impl EventPublisher for PgEvents {
    /// Queues `event` for the sending thread, or drops it when the queue is full.
    fn publish(&self, event: Event) {
        let payloads = match wire::encode(&event) {
            Ok(payloads) => payloads,
            Err(error) => {
                tracing::error!(%error, owner = %event.owner, "cannot encode an event; dropped");
                return;
            }
        };
        let Some(queue) = &self.shared.queue else {
            return;
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(payloads)
        {
            self.shared.dropped.warn(|dropped| {
                tracing::warn!(
                    dropped,
                    "events dropped: the queue to PostgreSQL is full (the database is \
                     unreachable or too slow); those users' devices miss them until they reload"
                );
            });
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The sender sends what is queued, then sees the queue closed; the listener
        // sees the flag at its next look.
        self.queue = None;
        self.stop.stop();
        if !self.stop.wait_for_threads(SHUTDOWN_GRACE) {
            tracing::warn!(
                "the events threads did not end within {SHUTDOWN_GRACE:?}; left to end by themselves"
            );
        }
    }
}

const LISTEN_ROLE: &str = "listen";
const NOTIFY_ROLE: &str = "notify";

/// What both threads need to open their connection again. No `Debug`: the URL may
/// hold a password.
#[derive(Clone)]
struct Link {
    url: String,
    application_name: String,
    channel: String,
    stop: Arc<Stop>,
}

impl Link {
    /// A new connection for `role`, set up by `setup`, after a lost one: retried with
    /// a growing wait, without a log line per attempt. `None` once told to stop.
    fn reconnect(
        &self,
        role: &str,
        setup: impl Fn(&mut PgConnection) -> QueryResult<()>,
    ) -> Option<PgConnection> {
        let mut wait = FIRST_BACKOFF;
        let mut attempts = 0_u32;
        loop {
            if self.stop.sleep(wait) {
                return None;
            }
            attempts += 1;
            let connected = PgConnection::establish(&self.url)
                .map_err(|e| e.to_string())
                .and_then(|mut connection| {
                    name_connection(&mut connection, &self.application_name, role)
                        .and_then(|()| setup(&mut connection))
                        .map(|()| connection)
                        .map_err(|e| e.to_string())
                });
            match connected {
                Ok(connection) => {
                    tracing::info!(role, attempts, "events connection back");
                    return Some(connection);
                }
                Err(error) => {
                    tracing::debug!(role, attempts, %error, "events connection not back yet");
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// The sending thread: the queue, in order, in batches, on one connection.
struct Sender {
    link: Link,
    queued: Receiver<Vec<String>>,
}

impl Sender {
    fn run(self, connection: PgConnection) {
        let mut connection = Some(connection);
        let mut pending: VecDeque<String> = VecDeque::new();
        loop {
            if pending.is_empty() {
                // Everything queued before the last handle went is still received.
                match self.queued.recv() {
                    Ok(payloads) => pending.extend(payloads),
                    Err(_) => return,
                }
            }
            while pending.len() < BATCH_PAYLOADS {
                match self.queued.try_recv() {
                    Ok(payloads) => pending.extend(payloads),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            let Some(live) = connection.as_mut() else {
                // Told to stop while the database is away: what is pending is lost
                // either way.
                connection = self.link.reconnect(NOTIFY_ROLE, send_unflushed);
                if connection.is_none() {
                    return;
                }
                continue;
            };
            let batch = batch_len(&pending);
            let payloads: Vec<&str> = pending.iter().take(batch).map(String::as_str).collect();
            match notify(live, &self.link.channel, &payloads) {
                Ok(()) => {
                    pending.drain(..batch);
                }
                // The connection answers: the statement itself failed, and would
                // again.
                Err(error) if live.batch_execute("SELECT 1").is_ok() => {
                    tracing::error!(%error, events = batch, "cannot send events; dropped");
                    pending.drain(..batch);
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        "lost the connection that sends events; reconnecting, events queue meanwhile"
                    );
                    connection = None;
                }
            }
        }
    }
}

/// How many of the payloads at the front of `pending` go in one statement: at most
/// [`BATCH_PAYLOADS`] and about [`BATCH_BYTES`], and never one equal to another in
/// the batch, since PostgreSQL delivers equal notifications of one transaction once.
fn batch_len(pending: &VecDeque<String>) -> usize {
    let mut seen = HashSet::new();
    let mut bytes = 0;
    let mut count = 0;
    for payload in pending.iter().take(BATCH_PAYLOADS) {
        if count > 0 && (bytes + payload.len() > BATCH_BYTES || !seen.insert(payload.as_str())) {
            break;
        }
        if count == 0 {
            seen.insert(payload.as_str());
        }
        bytes += payload.len();
        count += 1;
    }
    count
}

/// Sends `payloads` on `channel` in one statement, in order.
fn notify(connection: &mut PgConnection, channel: &str, payloads: &[&str]) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
    )
    .bind::<Text, _>(channel)
    .bind::<Array<Text>, _>(payloads)
    .execute(connection)
    .map(drop)
}

/// The listening thread: notifications in, events to the hub.
struct Listener {
    link: Link,
    hub: EventHub,
    assembler: Assembler,
    unreadable: Throttled,
}

impl Listener {
    fn run(mut self, connection: PgConnection) {
        let mut connection = Some(connection);
        // When the connection last proved alive: a notification or a check.
        let mut heard = Instant::now();
        // When the last notification came, which sets the pace of looking.
        let mut busy_since: Option<Instant> = None;
        while !self.link.stop.is_stopped() {
            let Some(live) = connection.as_mut() else {
                let channel = self.link.channel.clone();
                connection = self
                    .link
                    .reconnect(LISTEN_ROLE, |connection| listen(connection, &channel));
                // What was sent while nobody listened is lost: every connection of
                // this process is told to reload through the API.
                self.hub.missed_events();
                heard = Instant::now();
                continue;
            };
            match self.take(live) {
                Ok(0) => {
                    if heard.elapsed() >= CHECK_AFTER {
                        if let Err(error) = live.batch_execute("SELECT 1") {
                            self.lost(&error.to_string());
                            connection = None;
                            continue;
                        }
                        heard = Instant::now();
                    }
                    let busy = busy_since.is_some_and(|since| since.elapsed() < BUSY_FOR);
                    self.link.stop.sleep(if busy {
                        BUSY_POLL_INTERVAL
                    } else {
                        POLL_INTERVAL
                    });
                }
                Ok(_) => {
                    heard = Instant::now();
                    busy_since = Some(heard);
                }
                Err(error) => {
                    self.lost(&error);
                    connection = None;
                }
            }
        }
    }

    fn lost(&mut self, error: &str) {
        tracing::warn!(
            error,
            "lost the connection that listens for events; reconnecting (events sent \
             meanwhile do not reach this instance)"
        );
        self.assembler.clear();
    }

    /// Delivers what has arrived; how many notifications that was. `Err` when the
    /// connection is lost.
    fn take(&mut self, connection: &mut PgConnection) -> Result<usize, String> {
        let mut arrived = Vec::new();
        let mut failed = None;
        for notification in connection.notifications_iter().take(READ_BURST) {
            match notification {
                Ok(notification) => arrived.push(notification),
                Err(error) => {
                    failed = Some(error.to_string());
                    break;
                }
            }
        }
        let count = arrived.len();
        for notification in arrived {
            self.deliver(connection, notification)?;
        }
        failed.map_or(Ok(count), Err)
    }

    /// Delivers one notification, reading back what it refers to. `Err` when the
    /// connection is lost while reading.
    fn deliver(
        &mut self,
        connection: &mut PgConnection,
        notification: PgNotification,
    ) -> Result<(), String> {
        if notification.channel != self.link.channel {
            return Ok(());
        }
        let event = match wire::decode(&notification.payload) {
            Ok(Decoded::Event(event)) => Some(event),
            Ok(Decoded::Part(part)) => match self.assembler.add(notification.process_id, part) {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "part of a long delta missing; the delta is lost");
                    None
                }
            },
            Ok(Decoded::Reference(reference)) => match read_back(connection, reference) {
                Ok(Some(event)) => Some(event),
                Ok(None) => {
                    // Deleted since (its conversation's deletion follows), or not the
                    // owner's.
                    tracing::debug!(?reference, "the event's message or conversation is gone");
                    None
                }
                Err(error) if connection.batch_execute("SELECT 1").is_err() => {
                    return Err(error.to_string());
                }
                Err(error) => {
                    tracing::error!(%error, ?reference, "cannot read an event's data back; dropped");
                    None
                }
            },
            Err(error) => {
                let payload: String = notification.payload.chars().take(200).collect();
                self.unreadable.warn(|skipped| {
                    tracing::warn!(%error, payload, skipped, "skipped an event payload this instance cannot read");
                });
                None
            }
        };
        if let Some(event) = event {
            self.hub.deliver(event);
        }
        Ok(())
    }
}

/// The event `reference` stands for, read from the database, if its owner still has
/// it.
fn read_back(
    connection: &mut PgConnection,
    reference: Reference,
) -> Result<Option<Event>, StorageError> {
    let owner = reference.owner;
    let change = match reference.kind {
        ReferenceKind::MessageCreated | ReferenceKind::MessageUpdated => {
            let row = messages::table
                .inner_join(conversations::table)
                .filter(messages::id.eq(reference.id))
                .filter(messages::conversation_id.eq(reference.conversation.get()))
                .filter(conversations::user_id.eq(owner.get()))
                .select(MessageRow::as_select())
                .first::<MessageRow>(connection)
                .optional()
                .map_err(crate::database::storage_error)?;
            let Some(message) = row.map(MessageRow::into_message).transpose()? else {
                return Ok(None);
            };
            if reference.kind == ReferenceKind::MessageCreated {
                Change::MessageCreated(message)
            } else {
                Change::MessageUpdated(message)
            }
        }
        ReferenceKind::ConversationCreated | ReferenceKind::ConversationUpdated => {
            let row = conversations::table
                .filter(conversations::id.eq(reference.id))
                .filter(conversations::user_id.eq(owner.get()))
                .select(ConversationRow::as_select())
                .first::<ConversationRow>(connection)
                .optional()
                .map_err(crate::database::storage_error)?;
            let Some(conversation) = row.map(ConversationRow::into_conversation).transpose()?
            else {
                return Ok(None);
            };
            if reference.kind == ReferenceKind::ConversationCreated {
                Change::ConversationCreated(conversation)
            } else {
                Change::ConversationUpdated(conversation)
            }
        }
    };
    Ok(Some(Event::new(owner, change)))
}

/// Names the connection in `pg_stat_activity`.
fn name_connection(connection: &mut PgConnection, name: &str, role: &str) -> QueryResult<()> {
    connection.batch_execute(&format!(
        "SET application_name = {}",
        quote_literal(&format!("{name}-{role}"))
    ))
}

/// Lets the sending connection's commits return before their WAL is on disk. Each
/// `NOTIFY` statement commits a transaction with an id of its own, which otherwise
/// waits for a flush: one per batch, on the connection every event goes through.
/// Nothing is lost that a flush would keep: notifications do not outlive a crash of
/// the database, whose listeners are gone with it.
fn send_unflushed(connection: &mut PgConnection) -> QueryResult<()> {
    connection.batch_execute("SET synchronous_commit = off")
}

/// `LISTEN`s on `channel`.
fn listen(connection: &mut PgConnection, channel: &str) -> QueryResult<()> {
    connection.batch_execute(&format!("LISTEN {}", quote_identifier(channel)))
}

/// The channel for the tables this connection sees: see [`PgEvents`], "Channel".
fn channel_of(connection: &mut PgConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Schema {
        #[diesel(sql_type = Nullable<Text>)]
        schema: Option<String>,
    }
    let schema = diesel::sql_query("SELECT current_schema() AS schema")
        .get_result::<Schema>(connection)?
        .schema;
    Ok(channel_for(schema.as_deref()))
}

/// Longest channel name PostgreSQL takes (an identifier: `NAMEDATALEN - 1` bytes).
const MAX_CHANNEL_BYTES: usize = 63;

fn channel_for(schema: Option<&str>) -> String {
    match schema {
        None | Some("public") => CHANNEL.to_owned(),
        Some(schema) => {
            let channel = format!("{CHANNEL}:{schema}");
            if channel.len() <= MAX_CHANNEL_BYTES {
                channel
            } else {
                // Every instance computes the same name, whatever its build: FNV-1a,
                // not the standard library's hasher, whose output may change.
                format!("{CHANNEL}:{:016x}", fnv1a(schema.as_bytes()))
            }
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Telling the threads to stop, waking them from their waits, and waiting for them
/// to end.
#[derive(Debug, Default)]
struct Stop {
    state: Mutex<StopState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct StopState {
    stopped: bool,
    running: usize,
}

impl Stop {
    fn stop(&self) {
        lock(&self.state).stopped = true;
        self.changed.notify_all();
    }

    fn is_stopped(&self) -> bool {
        lock(&self.state).stopped
    }

    /// Waits `duration`, or less if told to stop; whether told to stop.
    fn sleep(&self, duration: Duration) -> bool {
        let state = lock(&self.state);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, duration, |state| !state.stopped)
            .unwrap_or_else(PoisonError::into_inner);
        state.stopped
    }

    /// Starts a thread counted among the running until `work` returns (or panics).
    fn spawn(
        self: &Arc<Self>,
        name: &str,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<(), EventsError> {
        lock(&self.state).running += 1;
        let running = Running(Arc::clone(self));
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _running = running;
                work();
            })
            .map(drop)
            .map_err(EventsError::Thread)
    }

    /// Waits up to `grace` for every thread to end; whether they did.
    fn wait_for_threads(&self, grace: Duration) -> bool {
        let state = lock(&self.state);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, grace, |state| state.running > 0)
            .unwrap_or_else(PoisonError::into_inner);
        state.running == 0
    }
}

/// Counts a thread out when it ends, however it ends; dropped with the closure if
/// the thread never starts.
struct Running(Arc<Stop>);

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.0.state).running -= 1;
        self.0.changed.notify_all();
    }
}

/// A warning logged at most every [`WARN_EVERY`], with how many times its cause
/// happened since the last one.
#[derive(Debug, Default)]
struct Throttled {
    since: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Throttled {
    fn warn(&self, log: impl FnOnce(u64)) {
        self.since.fetch_add(1, Ordering::Relaxed);
        // Never waits: while another thread logs, this one counts.
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.is_some_and(|last| last.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        log(self.since.swap(0, Ordering::Relaxed));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_schema_uses_the_plain_channel_others_their_own() {
        assert_eq!(channel_for(None), "chatbot_events");
        assert_eq!(channel_for(Some("public")), "chatbot_events");
        assert_eq!(channel_for(Some("test_1_2_3")), "chatbot_events:test_1_2_3");
        let long = "s".repeat(60);
        let channel = channel_for(Some(&long));
        assert!(channel.len() <= MAX_CHANNEL_BYTES, "{channel}");
        assert_eq!(
            channel,
            channel_for(Some(&long)),
            "the same on every instance"
        );
        assert_ne!(channel, channel_for(Some(&"t".repeat(60))));
        assert_eq!(
            fnv1a(b"a"),
            0xaf63_dc4c_8601_ec8c,
            "FNV-1a's published value"
        );
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote_identifier(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn a_batch_stops_before_a_payload_equal_to_one_in_it_and_at_its_bounds() {
        let pending: VecDeque<String> = ["a", "b", "a", "c"].map(String::from).into();
        assert_eq!(batch_len(&pending), 2);
        let many: VecDeque<String> = (0..BATCH_PAYLOADS + 5).map(|n| n.to_string()).collect();
        assert_eq!(batch_len(&many), BATCH_PAYLOADS);
        let big: VecDeque<String> = (0..3)
            .map(|n| format!("{n}{}", "x".repeat(BATCH_BYTES / 2)))
            .collect();
        assert_eq!(batch_len(&big), 1);
        assert_eq!(batch_len(&VecDeque::new()), 0);
    }

    #[test]
    fn throttled_warnings_count_what_they_did_not_log() {
        let throttled = Throttled::default();
        let mut logged = Vec::new();
        for _ in 0..5 {
            throttled.warn(|n| logged.push(n));
        }
        assert_eq!(logged, [1], "once per interval");
        *lock(&throttled.last) = Instant::now().checked_sub(WARN_EVERY);
        throttled.warn(|n| logged.push(n));
        assert_eq!(logged, [1, 5], "with the four not logged and this one");
    }

    #[test]
    fn a_sqlite_url_is_refused() {
        let hub = EventHub::new(chatbot_domain::services::HubSettings::DEFAULT);
        let url = DatabaseUrl::parse("sqlite://data/x.db").unwrap();
        assert!(matches!(
            PgEvents::start(&url, hub),
            Err(EventsError::NotPostgres)
        ));
    }
}
