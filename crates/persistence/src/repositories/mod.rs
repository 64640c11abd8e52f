//! The domain's storage ports, implemented on [`Database`](crate::Database).
//!
//! On SQLite, a transaction that writes starts with a write: a deferred transaction
//! that reads first and writes later can fail at once with "database is locked" when
//! another writer got there in between, which no busy timeout can wait out.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::connection::AnyConnection;

mod conversations;
mod messages;
mod replies;
mod sessions;
mod tokens;
mod users;

/// `SELECT`s exactly the columns of row type `$row`, through the multi-backend
/// connection (`returning(Row::as_returning())` does not compile there).
macro_rules! columns_of {
    ($row:ty) => {
        <$row as diesel::Selectable<crate::connection::MultiBackend>>::construct_selection()
    };
}
pub(crate) use columns_of;

/// Runs `read` in a read-only transaction that sees one snapshot of the database
/// throughout, so that several queries describe the same moment.
fn read_one_snapshot<T>(
    connection: &mut AnyConnection,
    read: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    connection.transaction(|connection| {
        // A SQLite transaction reads one snapshot anyway; PostgreSQL's default level,
        // READ COMMITTED, takes a new one for every statement.
        if let AnyConnection::Postgresql(postgres) = connection {
            postgres.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        read(connection)
    })
}

/// On PostgreSQL, locks the user `user` for the rest of the transaction, so that
/// writes that look at a user's records before changing them queue: under READ
/// COMMITTED two at once would each miss the other's change (two tokens of one purpose,
/// one conversation past the most allowed). SQLite has one writer at a time, and no
/// `FOR NO KEY UPDATE`.
fn lock_user(connection: &mut AnyConnection, user: i64) -> QueryResult<()> {
    if let AnyConnection::Postgresql(postgres) = connection {
        crate::schema::users::table
            .find(user)
            .select(crate::schema::users::id)
            .for_no_key_update()
            .load::<i64>(postgres)?;
    }
    Ok(())
}

/// A window's limit as SQL takes it; no limit is the largest one.
fn limit_of(limit: Option<usize>) -> i64 {
    limit.map_or(i64::MAX, |limit| i64::try_from(limit).unwrap_or(i64::MAX))
}

/// How many rows a statement affected, as the ports count them.
fn count_of(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}
