//! The diesel adapter of the chatbot domain's storage ports, on SQLite and PostgreSQL.
//!
//! [`Database`] is an r2d2 pool of connections to either database and implements
//! [`UserRepository`](chatbot_domain::ports::UserRepository),
//! [`ConversationRepository`](chatbot_domain::ports::ConversationRepository),
//! [`MessageRepository`](chatbot_domain::ports::MessageRepository),
//! [`SessionRepository`](chatbot_domain::ports::SessionRepository) and
//! [`TokenRepository`](chatbot_domain::ports::TokenRepository).
//! [`PgEvents`] carries users' events between the instances on one PostgreSQL
//! database (`LISTEN`/`NOTIFY`), implementing
//! [`EventPublisher`](chatbot_domain::ports::EventPublisher).
//!
//! # One code path, two databases
//!
//! Queries are written once against a diesel `MultiConnection` enum over
//! `PgConnection` and `SqliteConnection`; the pool's connection manager picks the
//! driver from the URL's scheme ([`DatabaseUrl`]). The schema uses portable column
//! types only (`BIGINT`, `TEXT`, `TIMESTAMP`, `BOOLEAN`), timestamps are written by the
//! application in UTC with millisecond precision, so both databases store and return
//! the same values. Migrations are embedded, one set per dialect under the
//! repository's `migrations/` folder, with the same names in both.
//!
//! SQLite connections run with `foreign_keys=ON` (cascading deletes),
//! `journal_mode=WAL` (readers beside a writer), `synchronous=NORMAL` (a committed
//! write survives a crash of the process) and a busy timeout, and write transactions
//! begin with a write, so concurrent writers wait for each other instead of failing
//! with "database is locked".
//!
//! # Blocking work and async callers
//!
//! Diesel is blocking, and the domain's ports are async (the bot is a network call,
//! and the send-message use case must not hold a transaction open while the bot
//! thinks). So each port method here is one unit of work — one statement or one
//! short transaction — run with a pooled connection on tokio's blocking thread pool
//! (`spawn_blocking`). Request handlers can await the ports directly and never block
//! their async worker; a use case that calls several ports gets a clear sequence of
//! transactions rather than one held across an external call. The cost is one hop to
//! the blocking pool per port call, microseconds against a query.
//!
//! # Example
//!
//! ```no_run
//! use chatbot_persistence::{Database, DatabaseUrl, PoolOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = DatabaseUrl::parse("sqlite://data/chatbot.db")?;
//! let database = Database::connect(&url, &PoolOptions::default())?;
//! database.run_pending_migrations()?;
//! # Ok(())
//! # }
//! ```

mod connection;
mod database;
mod events;
mod migrations;
mod repositories;
mod rows;
mod schema;
mod stored_time;
#[cfg(feature = "test-support")]
pub mod testing;
mod url;
mod writer;

pub use database::{Backend, ConnectError, Database, PoolOptions};
pub use events::{
    BUSY_FOR, BUSY_POLL_INTERVAL, CHANNEL, EventOptions, EventsError, POLL_INTERVAL, PgEvents,
    SHUTDOWN_GRACE,
};
pub use migrations::{MigrationError, MigrationStatus, embedded_migrations};
pub use url::{DatabaseUrl, UrlError};
