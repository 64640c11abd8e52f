//! One connection type over both databases, and the r2d2 manager that opens it.

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::DatabaseUrl;

/// A connection to either database; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// How long a SQLite writer waits for another writer's lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Opens connections for the pool, choosing the driver from the URL's scheme (the
/// derived `establish` would try each driver in turn and hide the real error).
#[derive(Debug)]
pub(crate) struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    pub(crate) fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut connection = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // busy_timeout first, so that switching to WAL waits for other
                // connections instead of failing. WAL lets readers run beside the
                // writer; NORMAL sync keeps every commit across a process crash.
                connection
                    .batch_execute(&format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                         PRAGMA journal_mode = WAL;
                         PRAGMA synchronous = NORMAL;
                         PRAGMA foreign_keys = ON;"
                    ))
                    .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(connection))
            }
        }
    }

    fn is_valid(&self, connection: &mut AnyConnection) -> Result<(), Self::Error> {
        match connection {
            AnyConnection::Postgresql(c) => c.ping(),
            AnyConnection::Sqlite(c) => c.ping(),
        }
        .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, connection: &mut AnyConnection) -> bool {
        std::thread::panicking()
            || match connection {
                AnyConnection::Postgresql(c) => c.is_broken(),
                AnyConnection::Sqlite(c) => c.is_broken(),
            }
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    use r2d2::ManageConnection;

    use super::*;

    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = BigInt)]
        value: i64,
    }

    #[derive(QueryableByName)]
    struct Word {
        #[diesel(sql_type = Text)]
        value: String,
    }

    #[test]
    fn sqlite_connections_run_with_wal_foreign_keys_normal_sync_and_a_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let manager = Manager::new(DatabaseUrl::Sqlite(dir.path().join("pragmas.db")));
        let AnyConnection::Sqlite(mut connection) = manager.connect().unwrap() else {
            panic!("a sqlite:// URL opens SQLite");
        };
        let number = |pragma: &str, c: &mut SqliteConnection| {
            let column = if pragma == "busy_timeout" {
                "timeout"
            } else {
                pragma
            };
            diesel::sql_query(format!("SELECT {column} AS value FROM pragma_{pragma}"))
                .get_result::<Number>(c)
                .unwrap()
                .value
        };
        let journal = diesel::sql_query("SELECT journal_mode AS value FROM pragma_journal_mode")
            .get_result::<Word>(&mut connection)
            .unwrap()
            .value;

        assert_eq!(journal, "wal");
        assert_eq!(number("synchronous", &mut connection), 1, "NORMAL");
        assert_eq!(number("foreign_keys", &mut connection), 1);
        assert_eq!(
            number("busy_timeout", &mut connection),
            i64::from(SQLITE_BUSY_TIMEOUT_MS)
        );
    }
}
