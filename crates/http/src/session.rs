//! Server-side sessions: actix-session's store on the domain's sessions use case,
//! and the extractor that turns a session into the logged-in user.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_session::SessionExt;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chatbot_domain::UserId;
use chatbot_domain::use_cases::Sessions;

use crate::error::{ApiError, ErrorKind};
use crate::request_log::ActingUser;

/// The session entry holding the logged-in user's id.
pub(crate) const USER_ID: &str = "user_id";

/// actix-session's [`SessionStore`] on the domain's [`Sessions`] use case, which
/// decides how sessions are keyed, renewed and ended: this adapter only carries the
/// cookie's key and actix-session's state map across.
#[derive(Clone)]
pub struct SessionStoreAdapter {
    sessions: Arc<dyn Sessions>,
}

impl std::fmt::Debug for SessionStoreAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStoreAdapter")
            .finish_non_exhaustive()
    }
}

impl SessionStoreAdapter {
    /// The store over `sessions`.
    pub fn new(sessions: Arc<dyn Sessions>) -> Self {
        Self { sessions }
    }
}

/// The logged-in user a session's state names, if any.
fn user_of(state: &HashMap<String, String>) -> Option<UserId> {
    state
        .get(USER_ID)
        .and_then(|id| serde_json::from_str::<i64>(id).ok())
        .map(UserId::new)
}

fn domain_key(key: &SessionKey) -> chatbot_domain::SessionKey {
    chatbot_domain::SessionKey::new(key.as_ref())
}

impl SessionStore for SessionStoreAdapter {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let Some(record) = self
            .sessions
            .resume(&domain_key(key))
            .await
            .map_err(|e| LoadError::Other(e.into()))?
        else {
            return Ok(None);
        };
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
        let serialized =
            serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = self
            .sessions
            .start(user_of(&state), serialized)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(key.as_str().to_owned()).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let serialized =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated = self
            .sessions
            .update(&domain_key(&key), user_of(&state), serialized)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if !updated {
            // Ended meanwhile (a logout elsewhere, or expiry): the cookie's key no longer
            // finds a session, and the change is dropped.
            tracing::debug!("dropping a change to a session that has ended");
        }
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<(), anyhow::Error> {
        Ok(self.sessions.renew(&domain_key(key)).await?)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(self.sessions.end(&domain_key(key)).await?)
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
