//! The connection pool, and running blocking diesel work off the async workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatbot_domain::ports::StoreProbe;
use chatbot_domain::{BoxError, StorageError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::DatabaseUrl;
use crate::connection::{AnyConnection, Manager};
use crate::writer::Writer;

/// The database answers when a trivial query succeeds, within at most the pool's
/// connection timeout.
#[async_trait]
impl StoreProbe for Database {
    async fn ping(&self) -> Result<(), StorageError> {
        self.run(|connection| {
            use diesel::connection::SimpleConnection;
            connection.batch_execute("SELECT 1")
        })
        .await
    }
}

/// How the connection pool behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long a query waits for a free connection (or for the database to come
    /// back) before failing with [`StorageError::Unavailable`].
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The folder of the SQLite file could not be created.
    #[error("cannot create the folder {folder} for the SQLite database: {source}")]
    CreateFolder {
        /// The folder.
        folder: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No connection could be opened in time.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What the driver said.
        #[source]
        source: diesel::r2d2::Error,
    },
    /// The thread that writes to SQLite could not be started.
    #[error("cannot start the SQLite writer thread: {0}")]
    Writer(#[source] std::io::Error),
}

/// Logs a connection the pool failed to open as one warning line (r2d2's own handler
/// logs the driver's multi-line message at error level on every retry). The request
/// that waited for it gets [`StorageError::Unavailable`] and says so itself.
#[derive(Debug)]
struct LogOnOneLine;

impl r2d2::HandleError<diesel::r2d2::Error> for LogOnOneLine {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        let error = error.to_string();
        let error = error.split_whitespace().collect::<Vec<_>>().join(" ");
        tracing::warn!(%error, "cannot open a database connection");
    }
}

/// A pool of connections to one database, implementing the domain's storage ports.
///
/// Cheap to clone: clones share the pool. Its async methods run diesel on tokio's
/// blocking thread pool, so they must be awaited inside a tokio runtime with timers
/// enabled (actix-web's is one; `#[tokio::main]` enables them too). Calls beyond the pool's size wait asynchronously for a turn, not on a
/// parked thread, so a flood of requests cannot exhaust the blocking pool.
#[derive(Debug, Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    turns: Arc<Semaphore>,
    /// SQLite only: the thread that runs every write, see [`Database::write`].
    writer: Option<Writer>,
    wait: Duration,
    backend: Backend,
}

impl Database {
    /// Opens a pool to `url`, creating the SQLite file and its folder when missing.
    /// Blocks until a first connection is open or the pool's timeout has passed;
    /// further connections open on demand.
    ///
    /// # Errors
    /// [`ConnectError`] saying why no connection could be opened.
    pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self, ConnectError> {
        let backend = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
                    std::fs::create_dir_all(folder).map_err(|source| {
                        ConnectError::CreateFolder {
                            folder: folder.to_owned(),
                            source,
                        }
                    })?;
                }
                Backend::Sqlite
            }
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        // Connections open on demand, never in the background: a connection being
        // opened on r2d2's thread while the process exits races OpenSSL's exit-time
        // cleanup (libpq negotiates TLS) and crashes it. No ping before every
        // checkout either: a broken connection is noticed by the query that fails on
        // it (`has_broken`), then dropped and replaced.
        let manager = Manager::new(url.clone());
        // One connection now, outside the pool: a wrong URL or an unreachable server
        // stops start-up at once with the driver's own reason, instead of after the
        // pool's timeout of retries.
        drop(r2d2::ManageConnection::connect(&manager).map_err(|source| {
            ConnectError::Connect {
                url: url.to_string(),
                source,
            }
        })?);
        let pool = r2d2::Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(options.connection_timeout)
            .error_handler(Box::new(LogOnOneLine))
            .build_unchecked(manager);
        let turns = Arc::new(Semaphore::new(options.max_size as usize));
        let writer = match url {
            DatabaseUrl::Sqlite(_) => {
                Some(Writer::start(Manager::new(url.clone())).map_err(ConnectError::Writer)?)
            }
            DatabaseUrl::Postgres(_) => None,
        };
        Ok(Self {
            pool,
            turns,
            writer,
            wait: options.connection_timeout,
            backend,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `work` on a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        // One deadline for both waits, the turn's and the connection's: a request must
        // not wait twice the timeout while the database is down.
        let deadline = Instant::now() + self.wait;
        let turn = self.turn().await?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let left = deadline.saturating_duration_since(Instant::now());
            let mut connection = pool
                .get_timeout(left)
                .map_err(|e| StorageError::Unavailable(Box::new(e)))?;
            work(&mut connection).map_err(storage_error)
        })
        .await
        .map_err(|e| StorageError::Failed(Box::new(e)))?
    }

    /// Runs `work`, a read of a row or a few by a unique index, like
    /// [`run`](Self::run); on SQLite, when a connection is idle, on the calling thread
    /// instead: such a read takes a few microseconds there, less than handing it to a
    /// blocking thread and back (two wake-ups), and WAL readers never wait for the
    /// writer. PostgreSQL's reads are round trips to another process, which must not
    /// hold up an async worker.
    pub(crate) async fn run_brief<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.backend == Backend::Sqlite
            && let Some(mut connection) = self.pool.try_get()
        {
            return work(&mut connection).map_err(storage_error);
        }
        self.run(work).await
    }

    /// Runs `work`, which writes, like [`run`](Self::run); on SQLite, on the
    /// [writer thread](crate::writer), after the writes queued before it.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.run(work, self.wait).await,
            None => self.run(work).await,
        }
    }

    /// A turn to use a connection, waited for at most the pool's connection timeout.
    async fn turn(&self) -> Result<OwnedSemaphorePermit, StorageError> {
        match tokio::time::timeout(self.wait, Arc::clone(&self.turns).acquire_owned()).await {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(closed)) => Err(StorageError::Failed(Box::new(closed))),
            Err(elapsed) => Err(StorageError::Unavailable(Box::new(elapsed))),
        }
    }

    /// A pooled connection for blocking work outside the request path (migrations).
    pub(crate) fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StorageError> {
        self.pool
            .get()
            .map_err(|e| StorageError::Unavailable(Box::new(e)))
    }
}

/// Sorts a diesel error into what the domain can act on.
pub(crate) fn storage_error(error: DieselError) -> StorageError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StorageError::Conflict,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => StorageError::Unavailable(Box::new(error)),
        DieselError::DatabaseError(_, info) if is_transient(info.message()) => {
            StorageError::Unavailable(Box::new(error))
        }
        _ => StorageError::Failed(Box::new(error)),
    }
}

/// Messages of failures that come from the database's surroundings (locks held too
/// long, a full or read-only disk, a server going down) rather than from the query;
/// they may pass by themselves.
fn is_transient(message: &str) -> bool {
    const TRANSIENT: [&str; 9] = [
        "database is locked",
        "database table is locked",
        "database or disk is full",
        "attempt to write a readonly database",
        "disk I/O error",
        "terminating connection",
        "the database system is",
        // SQLite rolled the whole transaction back (a full disk, an I/O error) under
        // a savepoint, whose own rollback then finds nothing to undo.
        "no such savepoint",
        "no transaction is active",
    ];
    TRANSIENT.iter().any(|m| message.contains(m))
}

/// Wraps a stored value the domain refuses (corrupt or hand-edited data).
pub(crate) fn corrupt(error: impl Into<BoxError>) -> StorageError {
    StorageError::Failed(error.into())
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorInformation;

    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        let info: Box<dyn DatabaseErrorInformation + Send + Sync> = Box::new(message.to_owned());
        DieselError::DatabaseError(kind, info)
    }

    #[test]
    fn unique_violations_are_conflicts() {
        let error = storage_error(database_error(DatabaseErrorKind::UniqueViolation, "dup"));
        assert!(matches!(error, StorageError::Conflict), "{error:?}");
    }

    #[test]
    fn lost_connections_locks_and_full_disks_are_unavailability() {
        for (kind, message) in [
            (
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            (
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            (
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access",
            ),
            (DatabaseErrorKind::Unknown, "database is locked"),
            (DatabaseErrorKind::Unknown, "database or disk is full"),
            (
                DatabaseErrorKind::Unknown,
                "attempt to write a readonly database",
            ),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            (
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
        ] {
            let error = storage_error(database_error(kind, message));
            assert!(
                matches!(error, StorageError::Unavailable(_)),
                "{message}: {error:?}"
            );
        }
    }

    #[test]
    fn anything_else_is_a_failure() {
        for error in [
            database_error(DatabaseErrorKind::CheckViolation, "sender check"),
            database_error(DatabaseErrorKind::Unknown, "no such table: users"),
            DieselError::NotFound,
        ] {
            let error = storage_error(error);
            assert!(matches!(error, StorageError::Failed(_)), "{error:?}");
        }
    }
}
