//! Server-side sessions: actix-session's store on the domain's session port, and
//! the extractor that turns a session into the logged-in user.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::time::Duration;

use actix_session::SessionExt;
use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chatbot_domain::ports::SessionRepository;
use chatbot_domain::{SessionRecord, StorageError, Timestamp, UserId};

use crate::error::{ApiError, ErrorKind};
use crate::request_log::ActingUser;

/// The session entry holding the logged-in user's id.
pub(crate) const USER_ID: &str = "user_id";

/// actix-session's [`SessionStore`] over the domain's [`SessionRepository`]: sessions
/// live in the application database, survive restarts, are shared by every instance
/// on that database, and are gone for good once deleted.
///
/// A session expires after `idle_timeout` without use. Loading a session renews its
/// deadline, at most once per a tenth of the timeout (and at least once a minute),
/// so an active user's requests do not each cost a write. A renewal that fails is
/// logged and skipped, so that reads keep working while the database takes no writes.
#[derive(Debug, Clone)]
pub struct DatabaseSessionStore<R> {
    sessions: R,
    idle_timeout: Duration,
}

impl<R: SessionRepository> DatabaseSessionStore<R> {
    /// A store keeping sessions in `sessions` for `idle_timeout` after their last use.
    pub fn new(sessions: R, idle_timeout: Duration) -> Self {
        Self {
            sessions,
            idle_timeout,
        }
    }

    fn record(
        &self,
        key: &str,
        state: &HashMap<String, String>,
    ) -> Result<SessionRecord, serde_json::Error> {
        Ok(SessionRecord {
            key: chatbot_domain::SessionKey::new(key),
            user: state
                .get(USER_ID)
                .and_then(|id| serde_json::from_str::<i64>(id).ok())
                .map(UserId::new),
            state: serde_json::to_string(state)?,
            expires_at: Timestamp::now().saturating_add(self.idle_timeout),
        })
    }

    /// How long after a renewal the next one is due.
    fn renewal_interval(&self) -> Duration {
        (self.idle_timeout / 10).min(Duration::from_secs(60))
    }
}

fn domain_key(key: &SessionKey) -> chatbot_domain::SessionKey {
    chatbot_domain::SessionKey::new(key.as_ref())
}

impl<R: SessionRepository> SessionStore for DatabaseSessionStore<R> {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let key = domain_key(key);
        let now = Timestamp::now();
        let Some(record) = self
            .sessions
            .load_session(&key, now)
            .await
            .map_err(|e| LoadError::Other(e.into()))?
        else {
            return Ok(None);
        };
        let renewed_at = record.expires_at.unix_millis()
            - i64::try_from(self.idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let due = i64::try_from(self.renewal_interval().as_millis()).unwrap_or(i64::MAX);
        if now.unix_millis().saturating_sub(renewed_at) >= due {
            // A renewal that fails (the database takes no writes for now: a full disk,
            // a read-only file) does not fail the request: the session stays valid
            // until its current deadline, and the next request renews it.
            if let Err(error) = self
                .sessions
                .touch_session(&key, now.saturating_add(self.idle_timeout))
                .await
            {
                tracing::warn!(%error, "could not renew a session; it keeps its deadline");
            }
        }
        match serde_json::from_str(&record.state) {
            Ok(state) => Ok(Some(state)),
            Err(error) => {
                // Unreadable state is treated as no session: the user logs in again.
                tracing::warn!(%error, "discarding a session whose state cannot be read");
                Ok(None)
            }
        }
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        // A 64-character random key colliding is not going to happen; retrying once
        // costs nothing and keeps a collision from ever surfacing as an error.
        let mut attempts = 0;
        loop {
            let key = generate_session_key();
            let record = self
                .record(key.as_ref(), &state)
                .map_err(|e| SaveError::Serialization(e.into()))?;
            match self.sessions.insert_session(record).await {
                Ok(()) => return Ok(key),
                Err(StorageError::Conflict) if attempts == 0 => attempts += 1,
                Err(error) => return Err(SaveError::Other(error.into())),
            }
        }
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let record = self
            .record(key.as_ref(), &state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated = self
            .sessions
            .update_session(record)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if !updated {
            // Deleted meanwhile (a logout elsewhere, or expiry): the session is over, and
            // saving its state again would undo that logout. The change is dropped; the
            // cookie's key no longer finds a session.
            tracing::debug!("dropping a change to a session that has ended");
        }
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<(), anyhow::Error> {
        self.sessions
            .touch_session(
                &domain_key(key),
                Timestamp::now().saturating_add(self.idle_timeout),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(self.sessions.delete_session(&domain_key(key)).await?)
    }
}

/// The user the request's session is logged in as; extracting it from a request
/// without a valid session is a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser(pub UserId);

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = request.get_session().get::<i64>(USER_ID).ok().flatten();
        let user = user.map(UserId::new);
        if let Some(id) = user {
            request.extensions_mut().insert(ActingUser(id));
        }
        ready(
            user.map(Self)
                .ok_or_else(|| ApiError::of_kind(ErrorKind::Unauthorized)),
        )
    }
}
