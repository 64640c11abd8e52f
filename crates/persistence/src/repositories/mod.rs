//! The domain's storage ports, implemented on [`Database`](crate::Database).
//!
//! On SQLite, a transaction that writes starts with a write: a deferred transaction
//! that reads first and writes later can fail at once with "database is locked" when
//! another writer got there in between, which no busy timeout can wait out.

mod conversations;
mod messages;
mod sessions;
mod users;

/// `SELECT`s exactly the columns of row type `$row`, through the multi-backend
/// connection (`returning(Row::as_returning())` does not compile there).
macro_rules! columns_of {
    ($row:ty) => {
        <$row as diesel::Selectable<crate::connection::MultiBackend>>::construct_selection()
    };
}
pub(crate) use columns_of;
