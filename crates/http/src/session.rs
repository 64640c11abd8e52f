//! Server-side sessions: actix-session's store on the domain's sessions use case,
//! and the extractor that turns a session into the logged-in user.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_session::SessionExt;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chatbot_domain::use_cases::Sessions;
use chatbot_domain::{SessionId, UserId};
use serde::Serialize;

use crate::error::{ApiError, ErrorKind};
use crate::request_log::ActingUser;

/// The session entry holding the logged-in user's id.
pub(crate) const USER_ID: &str = "user_id";
/// The session entry holding the session's own handle: put there when the session is
/// loaded, never stored in its state.
const SESSION_ID: &str = "session_id";
/// The session entry holding the client's `User-Agent` from login: stored beside the
/// state, put back when the session is loaded, so that a new key keeps it.
pub(crate) const USER_AGENT: &str = "user_agent";

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

/// Takes the entries that are not the session layer's state out of `state`: the
/// handle, and the user agent, which is returned.
fn take_entries_beside_state(state: &mut HashMap<String, String>) -> Option<String> {
    state.remove(SESSION_ID);
    state
        .remove(USER_AGENT)
        .and_then(|agent| serde_json::from_str::<String>(&agent).ok())
}

/// `value` as a session entry (actix-session keeps entries as JSON).
fn entry(value: impl Serialize) -> Option<String> {
    serde_json::to_string(&value).ok()
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
        match serde_json::from_str::<HashMap<String, String>>(&record.state) {
            Ok(mut state) => {
                if let Some(id) = entry(record.id.get()) {
                    state.insert(SESSION_ID.to_owned(), id);
                }
                if let Some(agent) = record.user_agent.as_deref().and_then(entry) {
                    state.insert(USER_AGENT.to_owned(), agent);
                }
                Ok(Some(state))
            }
            Err(error) => {
                // Unreadable state is treated as no session: the user logs in again.
                tracing::warn!(%error, "discarding a session whose state cannot be read");
                Ok(None)
            }
        }
    }

    async fn save(
        &self,
        mut state: HashMap<String, String>,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let user_agent = take_entries_beside_state(&mut state);
        let serialized =
            serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = self
            .sessions
            .start(user_of(&state), user_agent, serialized)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(key.as_str().to_owned()).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        key: SessionKey,
        mut state: HashMap<String, String>,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        take_entries_beside_state(&mut state);
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

/// The logged-in user and the session of the request, for the routes about sessions;
/// extracting it from a request without a valid session is a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentSession {
    /// Who is logged in.
    pub user: UserId,
    /// The session's handle.
    pub session: SessionId,
}

impl FromRequest for CurrentSession {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = request.get_session().get::<i64>(SESSION_ID).ok().flatten();
        let current = match (
            CurrentUser::from_request(request, payload).into_inner(),
            session,
        ) {
            (Ok(CurrentUser(user)), Some(id)) => Ok(Self {
                user,
                session: SessionId::new(id),
            }),
            (Err(error), _) => Err(error),
            (Ok(_), None) => Err(ApiError::of_kind(ErrorKind::Unauthorized)),
        };
        ready(current)
    }
}
