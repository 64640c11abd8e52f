//! Fresh, isolated databases for tests (the `test-support` feature): a temporary
//! SQLite file, or a PostgreSQL schema of its own on the server named by
//! `TEST_DATABASE_URL`, dropped afterwards. Tests get them in parallel and rerun
//! cleanly. Failing to set one up panics: this is test code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Database, DatabaseUrl, PoolOptions};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// How many SQL statements the connections of this process have started since the
/// first call of this function. The count is process-wide, so a test that compares
/// counts belongs in a test binary of its own.
pub fn statements_started() -> usize {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        diesel::connection::set_default_instrumentation(|| Some(Box::new(CountStatements)))
            .expect("no other instrumentation is installed");
    });
    STATEMENTS.load(Ordering::SeqCst)
}

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

struct CountStatements;

impl diesel::connection::Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The variable naming the PostgreSQL server the tests create their schemas on.
pub const POSTGRES_VARIABLE: &str = "TEST_DATABASE_URL";

/// A database of a test's own, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The pool to it.
    pub db: Database,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        server: String,
        url: String,
        /// What removes it, run on `server`.
        cleanup: String,
    },
}

impl TestDb {
    /// A migrated SQLite database in a temporary folder.
    pub fn sqlite() -> Self {
        let test = Self::sqlite_unmigrated();
        test.db.run_pending_migrations().unwrap();
        test
    }

    /// An empty SQLite database in a temporary folder.
    pub fn sqlite_unmigrated() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = connect(&url);
        Self {
            db,
            place: Place::Sqlite { url, _dir: dir },
        }
    }

    /// A migrated PostgreSQL schema of its own on the server `TEST_DATABASE_URL` names.
    ///
    /// Tests that call it carry `#[cfg_attr(no_postgres_tests, ignore = "…")]`: the
    /// crates' build scripts set that flag when the variable is unset at build time,
    /// so those tests are reported ignored, with the reason, rather than passed.
    pub fn postgres() -> Self {
        let test = Self::postgres_unmigrated();
        test.db.run_pending_migrations().unwrap();
        test
    }

    /// An empty PostgreSQL schema of its own on the server `TEST_DATABASE_URL` names.
    pub fn postgres_unmigrated() -> Self {
        let server = postgres_server();
        let schema = unique_name();
        PgConnection::establish(&server)
            .unwrap_or_else(|e| panic!("the server in {POSTGRES_VARIABLE} is unreachable: {e}"))
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-csearch_path%3D{schema}");
        let db = connect(&url);
        Self {
            db,
            place: Place::Postgres {
                server,
                url,
                cleanup: format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            },
        }
    }

    /// A migrated PostgreSQL database of its own, made with the ICU locale `locale`
    /// (`tr-TR`, say) on the server `TEST_DATABASE_URL` names: for what a database's
    /// locale could change.
    pub fn postgres_with_icu_locale(locale: &str) -> Self {
        let server = postgres_server();
        let name = unique_name();
        PgConnection::establish(&server)
            .unwrap_or_else(|e| panic!("the server in {POSTGRES_VARIABLE} is unreachable: {e}"))
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE '{locale}' LOCALE 'C.UTF-8'"
            ))
            .unwrap();
        let (address, query) = server.split_at(server.find('?').unwrap_or(server.len()));
        let (host, _) = address.rsplit_once('/').unwrap();
        let url = format!("{host}/{name}{query}");
        let test = Self {
            db: connect(&url),
            place: Place::Postgres {
                server,
                url,
                cleanup: format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            },
        };
        test.db.run_pending_migrations().unwrap();
        test
    }

    /// Runs `sql` on a connection of its own, beside the pool.
    pub fn execute(&self, sql: &str) {
        match &self.place {
            Place::Sqlite { url, .. } => {
                let mut c =
                    SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
                c.batch_execute(&format!("PRAGMA foreign_keys = ON; {sql}"))
                    .unwrap();
            }
            Place::Postgres { url, .. } => {
                PgConnection::establish(url)
                    .unwrap()
                    .batch_execute(sql)
                    .unwrap();
            }
        }
    }

    /// The URL that opens this database, for a second pool or a server under test.
    pub fn url(&self) -> &str {
        match &self.place {
            Place::Sqlite { url, .. } | Place::Postgres { url, .. } => url,
        }
    }

    /// The single number `sql` selects, as column `n`.
    pub fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let query = diesel::sql_query(sql);
        match &self.place {
            Place::Sqlite { url, .. } => {
                let mut c =
                    SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
                query.get_result::<Count>(&mut c).unwrap().n
            }
            Place::Postgres { url, .. } => {
                query
                    .get_result::<Count>(&mut PgConnection::establish(url).unwrap())
                    .unwrap()
                    .n
            }
        }
    }

    /// The texts `sql` selects, as column `t`, in the order it gives them, read on a
    /// connection of its own (e.g. `SELECT integrity_check AS t FROM
    /// pragma_integrity_check` on SQLite).
    pub fn texts(&self, sql: &str) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let query = diesel::sql_query(sql);
        let rows = match &self.place {
            Place::Sqlite { url, .. } => {
                let mut c =
                    SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
                query.load::<Text>(&mut c).unwrap()
            }
            Place::Postgres { url, .. } => query
                .load::<Text>(&mut PgConnection::establish(url).unwrap())
                .unwrap(),
        };
        rows.into_iter().map(|row| row.t).collect()
    }

    /// The SQLite file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.place {
            Place::Sqlite { url, .. } => Some(url.trim_start_matches("sqlite://").into()),
            Place::Postgres { .. } => None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Place::Postgres {
            server, cleanup, ..
        } = &self.place
        {
            if let Ok(mut c) = PgConnection::establish(server) {
                let _ = c.batch_execute(cleanup);
            }
        }
    }
}

/// The server `TEST_DATABASE_URL` names.
fn postgres_server() -> String {
    std::env::var(POSTGRES_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_VARIABLE} is not set: a PostgreSQL test needs a server, e.g. \
             {POSTGRES_VARIABLE}=postgres://postgres@127.0.0.1:5432/test"
        )
    })
}

/// A schema or database name no other test of any run takes.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

fn connect(url: &str) -> Database {
    let options = PoolOptions {
        max_size: 4,
        ..PoolOptions::default()
    };
    Database::connect(&DatabaseUrl::parse(url).unwrap(), &options).unwrap()
}

/// Expands each test into `sqlite::name` and `postgres::name`, given a fresh migrated
/// database as `&TestDb`. The test crate needs tokio with `macros` and
/// `rt-multi-thread`.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($db:ident: &TestDb) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = $crate::testing::TestDb::sqlite();
                    let $db = &test;
                    $body
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
                async fn $name() {
                    let test = $crate::testing::TestDb::postgres();
                    let $db = &test;
                    $body
                }
            )*
        }
    };
}
