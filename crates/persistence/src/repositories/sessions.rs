use async_trait::async_trait;
use chatbot_domain::ports::SessionRepository;
use chatbot_domain::{SessionKey, SessionRecord, StorageError, Timestamp, UserId};
use diesel::prelude::*;

use super::columns_of;
use crate::Database;
use crate::rows::{SessionRow, to_column};
use crate::schema::sessions;

#[async_trait]
impl SessionRepository for Database {
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StorageError> {
        let row = SessionRow::from(session);
        self.write(move |connection| {
            diesel::insert_into(sessions::table)
                .values(&row)
                .execute(connection)
        })
        .await?;
        Ok(())
    }

    async fn load_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let key = key.as_str().to_owned();
        let found = self
            .run(move |connection| {
                sessions::table
                    .filter(sessions::session_key.eq(key))
                    .filter(sessions::expires_at.gt(to_column(now)))
                    .select(columns_of!(SessionRow))
                    .first::<SessionRow>(connection)
                    .optional()
            })
            .await?;
        Ok(found.map(SessionRecord::from))
    }

    async fn update_session(&self, session: SessionRecord) -> Result<bool, StorageError> {
        let row = SessionRow::from(session);
        let updated = self
            .write(move |connection| {
                diesel::update(sessions::table.find(&row.session_key))
                    .set((
                        sessions::user_id.eq(row.user_id),
                        sessions::state.eq(&row.state),
                        sessions::expires_at.eq(row.expires_at),
                    ))
                    .execute(connection)
            })
            .await?;
        Ok(updated > 0)
    }

    async fn touch_session(
        &self,
        key: &SessionKey,
        expires_at: Timestamp,
    ) -> Result<bool, StorageError> {
        let key = key.as_str().to_owned();
        let touched = self
            .write(move |connection| {
                diesel::update(sessions::table.find(key))
                    .set(sessions::expires_at.eq(to_column(expires_at)))
                    .execute(connection)
            })
            .await?;
        Ok(touched > 0)
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<(), StorageError> {
        let key = key.as_str().to_owned();
        self.write(move |connection| diesel::delete(sessions::table.find(key)).execute(connection))
            .await?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64, StorageError> {
        let purged = self
            .write(move |connection| {
                diesel::delete(sessions::table.filter(sessions::expires_at.le(to_column(now))))
                    .execute(connection)
            })
            .await?;
        Ok(u64::try_from(purged).unwrap_or(u64::MAX))
    }

    async fn list_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, StorageError> {
        let rows = self
            .run(move |connection| {
                sessions::table
                    .filter(sessions::user_id.eq(user.get()))
                    .filter(sessions::expires_at.gt(to_column(now)))
                    .order((sessions::expires_at.desc(), sessions::session_key))
                    .select(columns_of!(SessionRow))
                    .load::<SessionRow>(connection)
            })
            .await?;
        Ok(rows.into_iter().map(SessionRecord::from).collect())
    }

    async fn delete_other_sessions(
        &self,
        user: UserId,
        keep: &SessionKey,
    ) -> Result<u64, StorageError> {
        let keep = keep.as_str().to_owned();
        let deleted = self
            .write(move |connection| {
                diesel::delete(
                    sessions::table
                        .filter(sessions::user_id.eq(user.get()))
                        .filter(sessions::session_key.ne(keep)),
                )
                .execute(connection)
            })
            .await?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}
