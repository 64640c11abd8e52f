//! The connection pool, and running blocking diesel work off the async workers.

use std::time::Duration;

use chatbot_domain::{BoxError, StorageError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::DatabaseUrl;
use crate::connection::{AnyConnection, Manager};

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
        source: r2d2::Error,
    },
}

/// A pool of connections to one database, implementing the domain's storage ports.
///
/// Cheap to clone: clones share the pool. Its async methods run diesel on tokio's
/// blocking thread pool, so they must be awaited inside a tokio runtime (actix-web's
/// is one).
#[derive(Debug, Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
}

impl Database {
    /// Opens a pool to `url`, creating the SQLite file and its folder when missing.
    /// Blocks until a first connection is open or the pool's timeout has passed.
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
        let pool = r2d2::Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(1))
            .connection_timeout(options.connection_timeout)
            .build(Manager::new(url.clone()))
            .map_err(|source| ConnectError::Connect {
                url: url.to_string(),
                source,
            })?;
        Ok(Self { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers a trivial query, waiting at most the pool's
    /// connection timeout.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|connection| {
            use diesel::connection::SimpleConnection;
            connection.batch_execute("SELECT 1")
        })
        .await
    }

    /// Runs `work` on a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = pool
                .get()
                .map_err(|e| StorageError::Unavailable(Box::new(e)))?;
            work(&mut connection).map_err(storage_error)
        })
        .await
        .map_err(|e| StorageError::Failed(Box::new(e)))?
    }

    /// A pooled connection for blocking work outside the request path (migrations).
    pub(crate) fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StorageError> {
        self.pool
            .get()
            .map_err(|e| StorageError::Unavailable(Box::new(e)))
    }
}

/// Sorts a diesel error into what the domain can act on.
fn storage_error(error: DieselError) -> StorageError {
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
    const TRANSIENT: [&str; 7] = [
        "database is locked",
        "database table is locked",
        "database or disk is full",
        "attempt to write a readonly database",
        "disk I/O error",
        "terminating connection",
        "the database system is",
    ];
    TRANSIENT.iter().any(|m| message.contains(m))
}

/// Wraps a stored value the domain refuses (corrupt or hand-edited data).
pub(crate) fn corrupt(error: impl Into<BoxError>) -> StorageError {
    StorageError::Failed(error.into())
}
