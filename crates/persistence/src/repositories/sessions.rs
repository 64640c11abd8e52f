use async_trait::async_trait;
use chatbot_domain::ports::SessionRepository;
use chatbot_domain::{
    NewSession, SecretDigest, SessionChange, SessionId, SessionRecord, StorageError, Timestamp,
    UserId,
};
use diesel::prelude::*;

use super::{columns_of, count_of};
use crate::Database;
use crate::rows::{NewSessionRow, SessionRow, to_column};
use crate::schema::sessions;

#[async_trait]
impl SessionRepository for Database {
    async fn insert_session(&self, session: NewSession) -> Result<SessionId, StorageError> {
        let row = NewSessionRow::from(session);
        let id = self
            .write(move |connection| {
                diesel::insert_into(sessions::table)
                    .values(&row)
                    .returning(sessions::id)
                    .get_result::<i64>(connection)
            })
            .await?;
        Ok(SessionId::new(id))
    }

    async fn load_session(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StorageError> {
        let digest = digest.as_str().to_owned();
        let found = self
            .run_brief(move |connection| {
                sessions::table
                    .filter(sessions::key_digest.eq(digest))
                    .filter(sessions::expires_at.gt(to_column(now)))
                    .select(columns_of!(SessionRow))
                    .first::<SessionRow>(connection)
                    .optional()
            })
            .await?;
        Ok(found.map(SessionRecord::from))
    }

    async fn update_session(
        &self,
        digest: &SecretDigest,
        change: SessionChange,
    ) -> Result<bool, StorageError> {
        let digest = digest.as_str().to_owned();
        let updated = self
            .write(move |connection| {
                diesel::update(sessions::table.filter(sessions::key_digest.eq(digest)))
                    .set((
                        sessions::user_id.eq(change.user.map(UserId::get)),
                        sessions::state.eq(change.state),
                        sessions::last_seen_at.eq(to_column(change.seen_at)),
                        sessions::expires_at.eq(to_column(change.expires_at)),
                    ))
                    .execute(connection)
            })
            .await?;
        Ok(updated > 0)
    }

    async fn touch_session(
        &self,
        digest: &SecretDigest,
        seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StorageError> {
        let digest = digest.as_str().to_owned();
        let touched = self
            .write(move |connection| {
                diesel::update(sessions::table.filter(sessions::key_digest.eq(digest)))
                    .set((
                        sessions::last_seen_at.eq(to_column(seen_at)),
                        sessions::expires_at.eq(to_column(expires_at)),
                    ))
                    .execute(connection)
            })
            .await?;
        Ok(touched > 0)
    }

    /// One statement, which reads the owner as it deletes: a session that was logged
    /// out meanwhile has no owner to report.
    async fn delete_session(&self, digest: &SecretDigest) -> Result<Option<UserId>, StorageError> {
        let digest = digest.as_str().to_owned();
        let owner = self
            .write(move |connection| {
                diesel::delete(sessions::table.filter(sessions::key_digest.eq(digest)))
                    .returning(sessions::user_id)
                    .get_result::<Option<i64>>(connection)
                    .optional()
            })
            .await?;
        Ok(owner.flatten().map(UserId::new))
    }

    async fn delete_user_session(&self, user: UserId, id: SessionId) -> Result<bool, StorageError> {
        let deleted = self
            .write(move |connection| {
                diesel::delete(
                    sessions::table
                        .find(id.get())
                        .filter(sessions::user_id.eq(user.get())),
                )
                .execute(connection)
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64, StorageError> {
        let purged = self
            .write(move |connection| {
                diesel::delete(sessions::table.filter(sessions::expires_at.le(to_column(now))))
                    .execute(connection)
            })
            .await?;
        Ok(count_of(purged))
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
                    .order((sessions::last_seen_at.desc(), sessions::id.desc()))
                    .select(columns_of!(SessionRow))
                    .load::<SessionRow>(connection)
            })
            .await?;
        Ok(rows.into_iter().map(SessionRecord::from).collect())
    }

    async fn delete_other_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, StorageError> {
        let deleted = self
            .write(move |connection| {
                // `id` is none of the (zero or one) kept: with nothing to keep, diesel
                // writes a condition every row meets.
                diesel::delete(
                    sessions::table
                        .filter(sessions::user_id.eq(user.get()))
                        .filter(sessions::id.ne_all(keep.map(SessionId::get))),
                )
                .execute(connection)
            })
            .await?;
        Ok(count_of(deleted))
    }
}
