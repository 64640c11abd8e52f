use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Events;
use crate::ports::{Clock, EventPublisher, KeyGenerator, SessionRepository};
use crate::use_cases::Sessions;
use crate::{
    Change, Error, NewSession, SessionChange, SessionId, SessionKey, SessionRecord, StorageError,
    UserId, clip_user_agent,
};

/// Server-side sessions over the session port: created with random keys, ended after
/// an idle timeout, renewed as they are used.
#[derive(Debug)]
pub struct SessionService<R, K, C> {
    sessions: R,
    keys: K,
    clock: C,
    idle_timeout: Duration,
    absolute_timeout: Duration,
    events: Events,
}

impl<R, K, C> SessionService<R, K, C>
where
    R: SessionRepository,
    K: KeyGenerator,
    C: Clock,
{
    /// Sessions kept in `sessions` with keys from `keys`, ending `idle_timeout` after
    /// their last use by `clock`.
    pub fn new(sessions: R, keys: K, clock: C, idle_timeout: Duration) -> Self {
        Self {
            sessions,
            keys,
            clock,
            idle_timeout,
            absolute_timeout: Self::DEFAULT_ABSOLUTE_TIMEOUT,
            events: Events::default(),
        }
    }

    /// How long a session lasts at most, however busy: 7 days (OWASP's absolute
    /// timeout), unless [`with_absolute_timeout`](Self::with_absolute_timeout) says
    /// otherwise.
    pub const DEFAULT_ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

    /// The same service, ending every session `absolute_timeout` after it started,
    /// however active it is.
    #[must_use]
    pub fn with_absolute_timeout(mut self, absolute_timeout: Duration) -> Self {
        self.absolute_timeout = absolute_timeout;
        self
    }

    /// When a session that started at `created_at` and is used at `now` ends unless
    /// used again: an idle timeout from now, and never after its absolute timeout.
    fn deadline(&self, created_at: crate::Timestamp, now: crate::Timestamp) -> crate::Timestamp {
        now.saturating_add(self.idle_timeout)
            .min(created_at.saturating_add(self.absolute_timeout))
    }

    /// Whether `record` is still live at `now` by its absolute timeout (the storage
    /// already left out the ones past their idle deadline).
    fn within_lifetime(&self, record: &SessionRecord, now: crate::Timestamp) -> bool {
        now < record.created_at.saturating_add(self.absolute_timeout)
    }

    /// The same service, telling `events` when a user's sessions end, so that the
    /// user's open connections can close theirs.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn EventPublisher>) -> Self {
        self.events = Events::to(events);
        self
    }

    /// How long after a renewal the next one is due.
    fn renewal_interval(&self) -> Duration {
        (self.idle_timeout / 10).min(Duration::from_secs(60))
    }

    /// Whether a session with this deadline was last renewed a renewal interval ago
    /// or more, by `now`.
    fn renewal_due(&self, record: &SessionRecord, now: crate::Timestamp) -> bool {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let renewed_at = record
            .expires_at
            .unix_millis()
            .saturating_sub(millis(self.idle_timeout));
        now.unix_millis().saturating_sub(renewed_at) >= millis(self.renewal_interval())
    }
}

#[async_trait]
impl<R, K, C> Sessions for SessionService<R, K, C>
where
    R: SessionRepository,
    K: KeyGenerator,
    C: Clock,
{
    async fn start(
        &self,
        user: Option<UserId>,
        user_agent: Option<String>,
        state: String,
    ) -> Result<SessionKey, Error> {
        let now = self.clock.now();
        let user_agent = user_agent.as_deref().map(clip_user_agent);
        // Two random keys of 128 bits or more colliding is not going to happen;
        // drawing again once costs nothing and keeps a collision from ever surfacing.
        let mut drawn = 0;
        loop {
            let key = self.keys.session_key();
            let session = NewSession {
                digest: key.digest(),
                user,
                state: state.clone(),
                user_agent: user_agent.clone(),
                created_at: now,
                expires_at: self.deadline(now, now),
            };
            match self.sessions.insert_session(session).await {
                Ok(_) => return Ok(key),
                Err(StorageError::Conflict) if drawn == 0 => drawn += 1,
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn resume(&self, key: &SessionKey) -> Result<Option<SessionRecord>, Error> {
        let now = self.clock.now();
        let digest = key.digest();
        let Some(mut record) = self.sessions.load_session(&digest, now).await? else {
            return Ok(None);
        };
        if !self.within_lifetime(&record, now) {
            return Ok(None);
        }
        if self.renewal_due(&record, now) {
            let expires_at = self.deadline(record.created_at, now);
            match self.sessions.touch_session(&digest, now, expires_at).await {
                Ok(_) => {
                    record.last_seen_at = now;
                    record.expires_at = expires_at;
                }
                // The database takes no writes for now (a full disk, a read-only
                // file): the session stays valid until its current deadline, and the
                // next use renews it.
                Err(error) => {
                    tracing::warn!(%error, "could not renew a session; it keeps its deadline");
                }
            }
        }
        Ok(Some(record))
    }

    async fn update(
        &self,
        key: &SessionKey,
        user: Option<UserId>,
        state: String,
    ) -> Result<bool, Error> {
        let now = self.clock.now();
        let change = SessionChange {
            user,
            state,
            seen_at: now,
            expires_at: now.saturating_add(self.idle_timeout),
        };
        Ok(self.sessions.update_session(&key.digest(), change).await?)
    }

    async fn renew(&self, key: &SessionKey) -> Result<(), Error> {
        let now = self.clock.now();
        let expires_at = now.saturating_add(self.idle_timeout);
        self.sessions
            .touch_session(&key.digest(), now, expires_at)
            .await?;
        Ok(())
    }

    async fn end(&self, key: &SessionKey) -> Result<(), Error> {
        if let Some(user) = self.sessions.delete_session(&key.digest()).await? {
            self.events.publish(user, Change::SessionsEnded);
        }
        Ok(())
    }

    async fn end_one(&self, user: UserId, id: SessionId) -> Result<(), Error> {
        if !self.sessions.delete_user_session(user, id).await? {
            return Err(Error::SessionNotFound);
        }
        self.events.publish(user, Change::SessionsEnded);
        Ok(())
    }

    async fn end_all_but(&self, user: UserId, keep: SessionId) -> Result<u64, Error> {
        let ended = self
            .sessions
            .delete_other_sessions(user, Some(keep))
            .await?;
        if ended > 0 {
            self.events.publish(user, Change::SessionsEnded);
        }
        Ok(ended)
    }

    async fn is_live(&self, key: &SessionKey) -> Result<bool, Error> {
        let now = self.clock.now();
        let record = self.sessions.load_session(&key.digest(), now).await?;
        Ok(record.is_some_and(|record| self.within_lifetime(&record, now)))
    }

    async fn list(&self, user: UserId) -> Result<Vec<SessionRecord>, Error> {
        Ok(self.sessions.list_sessions(user, self.clock.now()).await?)
    }

    async fn purge_expired(&self) -> Result<u64, Error> {
        Ok(self
            .sessions
            .purge_expired_sessions(self.clock.now())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{MockKeyGenerator, MockSessionRepository};
    use crate::{BoxError, ManualClock, SecretDigest, Timestamp};

    const IDLE: Duration = Duration::from_secs(1800);
    const ALICE: UserId = UserId::new(7);
    const HANDLE: SessionId = SessionId::new(3);

    fn start() -> Timestamp {
        Timestamp::from_unix_millis(1_795_586_834_123).unwrap()
    }

    fn key(n: usize) -> SessionKey {
        SessionKey::new(format!("key-{n}"))
    }

    fn digest(n: usize) -> SecretDigest {
        key(n).digest()
    }

    /// Keys `key-0`, `key-1`, ... in turn.
    fn numbered_keys() -> MockKeyGenerator {
        let drawn = Arc::new(AtomicUsize::new(0));
        let mut keys = MockKeyGenerator::new();
        keys.expect_session_key()
            .returning(move || key(drawn.fetch_add(1, Ordering::SeqCst)));
        keys
    }

    fn service(
        sessions: MockSessionRepository,
        clock: &ManualClock,
    ) -> SessionService<MockSessionRepository, MockKeyGenerator, ManualClock> {
        SessionService::new(sessions, numbered_keys(), clock.clone(), IDLE)
    }

    fn live(expires_at: Timestamp) -> SessionRecord {
        SessionRecord {
            id: HANDLE,
            user: Some(ALICE),
            state: "{}".to_owned(),
            user_agent: None,
            created_at: start(),
            last_seen_at: start(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_new_session_stores_the_digest_of_its_key_never_the_key() {
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_insert_session()
            .withf(|session| {
                session.digest == digest(0)
                    && session.digest.as_str() != key(0).as_str()
                    && session.user == Some(ALICE)
                    && session.created_at == start()
                    && session.expires_at == start().saturating_add(IDLE)
                    && session.user_agent.as_deref() == Some("curl/8")
            })
            .times(1)
            .returning(|_| Ok(HANDLE));
        let started = service(sessions, &clock)
            .start(Some(ALICE), Some("curl/8\n".to_owned()), "{}".to_owned())
            .await
            .unwrap();
        assert_eq!(started, key(0));
    }

    #[tokio::test]
    async fn a_long_user_agent_is_cut() {
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_insert_session()
            .withf(|session| {
                session.user_agent.as_ref().map(|ua| ua.chars().count())
                    == Some(crate::MAX_USER_AGENT_CHARS)
            })
            .returning(|_| Ok(HANDLE));
        service(sessions, &clock)
            .start(None, Some("x".repeat(10_000)), String::new())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_key_that_collides_is_drawn_again_once_and_only_once() {
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_insert_session()
            .withf(|session| session.digest == digest(0))
            .returning(|_| Err(StorageError::Conflict));
        sessions
            .expect_insert_session()
            .withf(|session| session.digest == digest(1))
            .returning(|_| Ok(HANDLE));
        let service = service(sessions, &clock);
        assert_eq!(
            service.start(None, None, String::new()).await.unwrap(),
            key(1)
        );

        let mut always = MockSessionRepository::new();
        always
            .expect_insert_session()
            .times(2)
            .returning(|_| Err(StorageError::Conflict));
        let refused = super::SessionService::new(always, numbered_keys(), clock, IDLE)
            .start(None, None, String::new())
            .await;
        assert!(matches!(
            refused,
            Err(Error::Storage(StorageError::Conflict))
        ));
    }

    #[tokio::test]
    async fn a_session_is_renewed_once_a_tenth_of_the_timeout_has_passed_and_not_before() {
        let clock = ManualClock::starting_at(start());
        let deadline = start().saturating_add(IDLE);
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_load_session()
            .with(eq(digest(0)), mockall::predicate::always())
            .returning(move |_, _| Ok(Some(live(deadline))));
        // 60 s is the interval: a tenth of 30 minutes would be 3 minutes, the cap wins.
        let renewed_at = start().saturating_add(Duration::from_secs(60));
        sessions
            .expect_touch_session()
            .with(
                eq(digest(0)),
                eq(renewed_at),
                eq(renewed_at.saturating_add(IDLE)),
            )
            .times(1)
            .returning(|_, _, _| Ok(true));
        let service = service(sessions, &clock);

        clock.advance(Duration::from_secs(59));
        let early = service.resume(&key(0)).await.unwrap().unwrap();
        assert_eq!(early.expires_at, deadline, "no write before it is due");

        clock.advance(Duration::from_secs(1));
        let renewed = service.resume(&key(0)).await.unwrap().unwrap();
        assert_eq!(renewed.expires_at, renewed_at.saturating_add(IDLE));
        assert_eq!(renewed.last_seen_at, renewed_at);
    }

    #[tokio::test]
    async fn a_busy_session_ends_at_its_absolute_timeout_and_is_never_renewed_past_it() {
        let clock = ManualClock::starting_at(start());
        let week = SessionService::<MockSessionRepository, MockKeyGenerator, ManualClock>::DEFAULT_ABSOLUTE_TIMEOUT;
        let end = start().saturating_add(week);
        let mut sessions = MockSessionRepository::new();
        // Kept busy: its idle deadline is always ahead.
        sessions
            .expect_load_session()
            .returning(|_, now| Ok(Some(live(now.saturating_add(Duration::from_secs(1))))));
        sessions
            .expect_touch_session()
            .withf(move |_, _, expires_at| *expires_at <= end)
            .returning(|_, _, _| Ok(true));
        let service = service(sessions, &clock);

        clock.advance(week - IDLE / 2);
        let late = service
            .resume(&key(0))
            .await
            .unwrap()
            .expect("live a little longer");
        assert_eq!(
            late.expires_at, end,
            "renewed up to its absolute end, not past it"
        );
        clock.advance(IDLE / 2 - Duration::from_millis(1));
        assert!(service.resume(&key(0)).await.unwrap().is_some());
        clock.advance(Duration::from_millis(1));
        assert!(
            service.resume(&key(0)).await.unwrap().is_none(),
            "a week after login"
        );
        assert!(!service.is_live(&key(0)).await.unwrap());
    }

    #[tokio::test]
    async fn a_short_timeout_renews_every_tenth_of_it() {
        let idle = Duration::from_secs(100);
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_load_session()
            .returning(move |_, _| Ok(Some(live(start().saturating_add(idle)))));
        sessions
            .expect_touch_session()
            .times(1)
            .returning(|_, _, _| Ok(true));
        let service = SessionService::new(sessions, numbered_keys(), clock.clone(), idle);
        clock.advance(Duration::from_secs(9));
        service.resume(&key(0)).await.unwrap();
        clock.advance(Duration::from_secs(1));
        service.resume(&key(0)).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_session_is_asked_for_at_the_clocks_time_and_is_none() {
        let clock = ManualClock::starting_at(start());
        clock.advance(IDLE);
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_load_session()
            .with(eq(digest(0)), eq(start().saturating_add(IDLE)))
            .returning(|_, _| Ok(None));
        assert!(
            service(sessions, &clock)
                .resume(&key(0))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_renewal_that_fails_keeps_the_session_and_its_deadline() {
        let clock = ManualClock::starting_at(start());
        let deadline = start().saturating_add(IDLE);
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_load_session()
            .returning(move |_, _| Ok(Some(live(deadline))));
        sessions
            .expect_touch_session()
            .returning(|_, _, _| Err(StorageError::Unavailable(BoxError::from("read-only file"))));
        clock.advance(Duration::from_secs(600));
        let resumed = service(sessions, &clock).resume(&key(0)).await.unwrap();
        assert_eq!(resumed.unwrap().expires_at, deadline);
    }

    #[tokio::test]
    async fn an_update_renews_and_says_whether_the_session_still_exists() {
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_update_session()
            .withf(|stored, change| {
                *stored == digest(0)
                    && change.seen_at == start()
                    && change.expires_at == start().saturating_add(IDLE)
            })
            .returning(|_, _| Ok(false));
        let updated = service(sessions, &clock)
            .update(&key(0), Some(ALICE), "{}".to_owned())
            .await
            .unwrap();
        assert!(!updated, "a session ended meanwhile is not written back");
    }

    #[tokio::test]
    async fn listing_and_purging_ask_at_the_clocks_time() {
        let clock = ManualClock::starting_at(start());
        clock.advance(Duration::from_secs(5));
        let now = start().saturating_add(Duration::from_secs(5));
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_list_sessions()
            .with(eq(ALICE), eq(now))
            .returning(move |_, _| Ok(vec![live(now)]));
        sessions
            .expect_purge_expired_sessions()
            .with(eq(now))
            .returning(|_| Ok(3));
        let service = service(sessions, &clock);
        assert_eq!(service.list(ALICE).await.unwrap().len(), 1);
        assert_eq!(service.purge_expired().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn ending_sessions_tells_the_users_connections_and_a_check_renews_nothing() {
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_load_session()
            .returning(|_, now| Ok(Some(live(now.saturating_add(IDLE)))));
        sessions.expect_touch_session().never();
        sessions
            .expect_delete_session()
            .with(eq(digest(0)))
            .times(1)
            .returning(|_| Ok(Some(ALICE)));
        sessions
            .expect_delete_other_sessions()
            .with(eq(ALICE), eq(Some(HANDLE)))
            .times(2)
            .returning({
                let calls = Arc::new(AtomicUsize::new(0));
                move |_, _| {
                    Ok(if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        2
                    } else {
                        0
                    })
                }
            });
        sessions
            .expect_delete_user_session()
            .with(eq(ALICE), eq(SessionId::new(9)))
            .times(1)
            .returning(|_, _| Ok(true));
        let mut events = crate::ports::MockEventPublisher::new();
        events
            .expect_publish()
            .with(eq(crate::Event::new(ALICE, Change::SessionsEnded)))
            .times(3)
            .return_const(());
        let service = service(sessions, &clock).with_events(Arc::new(events));

        assert!(service.is_live(&key(0)).await.unwrap());
        service.end(&key(0)).await.unwrap();
        assert_eq!(service.end_all_but(ALICE, HANDLE).await.unwrap(), 2);
        assert_eq!(
            service.end_all_but(ALICE, HANDLE).await.unwrap(),
            0,
            "none ended: nobody told"
        );
        service.end_one(ALICE, SessionId::new(9)).await.unwrap();
    }

    #[tokio::test]
    async fn ending_a_session_the_user_does_not_have_is_not_found_and_tells_nobody() {
        let clock = ManualClock::starting_at(start());
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_delete_user_session()
            .returning(|_, _| Ok(false));
        sessions.expect_delete_session().returning(|_| Ok(None));
        let mut events = crate::ports::MockEventPublisher::new();
        events.expect_publish().never();
        let service = service(sessions, &clock).with_events(Arc::new(events));
        let error = service.end_one(ALICE, HANDLE).await.unwrap_err();
        assert!(matches!(error, Error::SessionNotFound), "{error:?}");
        service.end(&key(5)).await.unwrap();
    }
}
