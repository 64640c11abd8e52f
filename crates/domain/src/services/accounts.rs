mod failed_logins;

pub use failed_logins::FailedLoginLimit;
use failed_logins::FailedLogins;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use super::Events;
use crate::ports::{
    Clock, KeyGenerator, Mailer, PasswordHasher, SessionRepository, Spawner, TokenRepository,
    UserRepository,
};
use crate::use_cases::Accounts;
use crate::{
    AccountMail, AccountToken, Change, DisplayName, Email, Error, NewAccount, NewAccountToken,
    NewUser, Password, PasswordAttempt, PasswordHash, Profile, ProfileChange, SecretToken,
    SessionId, StorageError, TokenPurpose, User, UserId, Username,
};

/// The ports an [`AccountService`] works through.
#[derive(Clone)]
pub struct AccountPorts {
    /// Where users and their profiles are stored.
    pub users: Arc<dyn UserRepository>,
    /// Where sessions are stored: a new password ends them.
    pub sessions: Arc<dyn SessionRepository>,
    /// Where mailed tokens are stored, as digests.
    pub tokens: Arc<dyn TokenRepository>,
    /// Hashes and checks passwords.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Makes the mailed tokens.
    pub keys: Arc<dyn KeyGenerator>,
    /// Sends the mail.
    pub mailer: Arc<dyn Mailer>,
    /// Dates accounts and tokens.
    pub clock: Arc<dyn Clock>,
    /// Runs work the answer must not wait for (or be timed by).
    pub spawner: Arc<dyn Spawner>,
}

impl std::fmt::Debug for AccountPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPorts").finish_non_exhaustive()
    }
}

/// Accounts over their ports: signing up, credentials, profiles, passwords, leaving,
/// and the mailed links.
#[derive(Debug)]
pub struct AccountService {
    ports: Arc<AccountPorts>,
    decoy_hash: OnceLock<PasswordHash>,
    events: Events,
    failed_logins: Option<FailedLogins>,
}

impl AccountService {
    /// A service over `ports`.
    pub fn new(ports: AccountPorts) -> Self {
        Self {
            ports: Arc::new(ports),
            decoy_hash: OnceLock::new(),
            events: Events::default(),
            failed_logins: None,
        }
    }

    /// The same service, refusing logins with a username whose failed logins have
    /// reached `limit` (whatever addresses they came from) until its window ends.
    #[must_use]
    pub fn with_failed_login_limit(mut self, limit: FailedLoginLimit) -> Self {
        self.failed_logins = Some(FailedLogins::new(limit));
        self
    }

    /// Checks `password` against the account named `username` (never telling by
    /// time which names exist).
    async fn check_credentials(
        &self,
        username: Option<&Username>,
        password: &PasswordAttempt,
    ) -> Result<User, Error> {
        let stored = match username {
            Some(username) => self.ports.users.find_credentials(username).await?,
            None => None,
        };
        match stored {
            Some(credentials) if fits(password) => {
                if self
                    .ports
                    .verify(password, &credentials.password_hash)
                    .await?
                {
                    Ok(credentials.user)
                } else {
                    Err(Error::InvalidCredentials)
                }
            }
            _ => {
                // The same work as a wrong password, so timing tells no names.
                let decoy = self.decoy_hash().await?;
                self.ports.verify(password, decoy).await?;
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// The same service, telling `events` when a user's sessions end (a new
    /// password, a reset, a deleted account), so that their open connections close.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn crate::ports::EventPublisher>) -> Self {
        self.events = Events::to(events);
        self
    }

    /// A hash made by this hasher, at its cost, of a password no account has; made
    /// once, at start-up ([`Accounts::prepare`]) or else on first need.
    async fn decoy_hash(&self) -> Result<&PasswordHash, Error> {
        if let Some(hash) = self.decoy_hash.get() {
            return Ok(hash);
        }
        let decoy = Password::parse("decoy password of no account")?;
        let hash = self.ports.hash(&decoy).await?;
        Ok(self.decoy_hash.get_or_init(|| hash))
    }

    /// Checks that `attempt` is the password of `user`.
    async fn confirm_password(&self, user: UserId, attempt: &PasswordAttempt) -> Result<(), Error> {
        let credentials = self
            .ports
            .users
            .find_credentials_of(user)
            .await?
            .ok_or(Error::AccountGone)?;
        let matches = fits(attempt)
            && self
                .ports
                .verify(attempt, &credentials.password_hash)
                .await?;
        if matches {
            Ok(())
        } else {
            Err(Error::WrongPassword)
        }
    }

    /// Ends every session of `user` but `keep`, and tells their connections.
    async fn end_sessions(&self, user: UserId, keep: Option<SessionId>) -> Result<(), Error> {
        self.ports
            .sessions
            .delete_other_sessions(user, keep)
            .await?;
        self.events.publish(user, Change::SessionsEnded);
        Ok(())
    }
}

/// Whether `attempt` can be a password at all: signup refuses longer ones, and a
/// hasher may truncate longer input, so such an attempt is never checked against a
/// real hash.
fn fits(attempt: &PasswordAttempt) -> bool {
    attempt.expose().len() <= Password::MAX_BYTES
}

impl AccountPorts {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, Error> {
        self.hasher.hash(password).await.map_err(Error::from)
    }

    async fn verify(&self, attempt: &PasswordAttempt, hash: &PasswordHash) -> Result<bool, Error> {
        self.hasher.verify(attempt, hash).await.map_err(Error::from)
    }

    /// Makes a token for `purpose`, stores its digest (voiding older ones of the same
    /// purpose) and mails it to `email`, an address of `profile`.
    async fn mail_token(
        &self,
        profile: &Profile,
        email: Email,
        purpose: TokenPurpose,
    ) -> Result<(), Error> {
        let token = self.keys.secret_token();
        let now = self.clock.now();
        self.tokens
            .issue_token(NewAccountToken {
                digest: token.digest(),
                user: profile.user.id,
                purpose,
                email: email.clone(),
                created_at: now,
                expires_at: now.saturating_add(purpose.lifetime()),
            })
            .await?;
        self.mailer.send(AccountMail {
            to: email,
            display_name: profile.display_name.clone(),
            purpose,
            token,
        });
        Ok(())
    }

    /// Takes the token back, once: [`Error::InvalidToken`] when unknown, used or
    /// expired.
    async fn take_token(
        &self,
        token: &SecretToken,
        purpose: TokenPurpose,
    ) -> Result<AccountToken, Error> {
        match self.tokens.take_token(&token.digest(), purpose).await? {
            Some(taken) if taken.expires_at > self.clock.now() => Ok(taken),
            _ => Err(Error::InvalidToken),
        }
    }

    async fn forgot_password(&self, email: Email) -> Result<(), Error> {
        let Some(profile) = self.users.find_profile_by_email(&email).await? else {
            tracing::info!("a password reset was asked for an address no account has");
            return Ok(());
        };
        // The address as its owner typed it.
        let to = profile.email.clone().unwrap_or(email);
        self.mail_token(&profile, to, TokenPurpose::ResetPassword)
            .await
    }
}

#[async_trait]
impl Accounts for AccountService {
    async fn sign_up(&self, account: NewAccount) -> Result<User, Error> {
        let password_hash = self.ports.hash(&account.password).await?;
        let new_user = NewUser {
            display_name: DisplayName::from(&account.username),
            username: account.username,
            email: account.email.clone(),
            password_hash,
            created_at: self.ports.clock.now(),
        };
        let user = match self.ports.users.insert_user(new_user).await {
            Err(StorageError::Conflict) => {
                return Err(match &account.email {
                    Some(email)
                        if self
                            .ports
                            .users
                            .find_profile_by_email(email)
                            .await?
                            .is_some() =>
                    {
                        Error::EmailTaken
                    }
                    _ => Error::UsernameTaken,
                });
            }
            result => result?,
        };
        if let Some(email) = account.email {
            let profile = Profile {
                display_name: DisplayName::from(&user.username),
                user: user.clone(),
                email: Some(email.clone()),
                email_verified: false,
            };
            // The account exists: a mail that cannot be prepared now is asked for
            // again from the profile, never a failed signup.
            if let Err(error) = self
                .ports
                .mail_token(&profile, email, TokenPurpose::VerifyEmail)
                .await
            {
                tracing::warn!(%error, user = user.id.get(), "could not prepare the verification mail of a new account");
            }
        }
        Ok(user)
    }

    async fn verify_credentials(
        &self,
        username: &str,
        password: &PasswordAttempt,
    ) -> Result<User, Error> {
        let username = Username::parse(username).ok();
        // A name no account can have is never locked: there is nothing to guess.
        let counted = self
            .failed_logins
            .as_ref()
            .zip(username.as_ref().map(Username::normalized));
        if let Some((failed_logins, name)) = &counted {
            failed_logins
                .attempt(name, self.ports.clock.now())
                .map_err(|retry_after| Error::LoginsSuspended { retry_after })?;
        }
        let outcome = self.check_credentials(username.as_ref(), password).await;
        if let Some((failed_logins, name)) = &counted {
            match &outcome {
                Ok(_) => failed_logins.succeeded(name),
                Err(Error::InvalidCredentials) => {}
                Err(_) => failed_logins.not_judged(name),
            }
        }
        outcome
    }

    async fn profile(&self, user: UserId) -> Result<Profile, Error> {
        self.ports
            .users
            .find_profile(user)
            .await?
            .ok_or(Error::AccountGone)
    }

    async fn update_profile(
        &self,
        user: UserId,
        mut change: ProfileChange,
    ) -> Result<Profile, Error> {
        let current = self.profile(user).await?;
        // The same address, whatever its letter case, keeps its verification.
        if let Some(Some(email)) = &change.email {
            if current.email.as_ref().is_some_and(|had| had.same_as(email)) {
                change.email = None;
            }
        }
        let address_changes = change.email.is_some();
        let new_email = change.email.clone().flatten();
        if change == ProfileChange::default() {
            return Ok(current);
        }
        let profile = match self.ports.users.update_profile(user, change).await {
            Err(StorageError::Conflict) => return Err(Error::EmailTaken),
            result => result?.ok_or(Error::AccountGone)?,
        };
        if address_changes {
            // A reset link went to the old address: whoever reads that mailbox now
            // must not get in with it.
            self.ports
                .tokens
                .revoke_tokens(user, TokenPurpose::ResetPassword)
                .await?;
        }
        if let Some(email) = new_email {
            // The change is made: a mail that cannot be prepared is asked for again
            // (POST /api/me/email/verify), never a failed change.
            let mailed = self
                .ports
                .mail_token(&profile, email, TokenPurpose::VerifyEmail)
                .await;
            if let Err(error) = mailed {
                tracing::warn!(%error, user = user.get(), "could not prepare a verification mail");
            }
        }
        Ok(profile)
    }

    async fn change_password(
        &self,
        user: UserId,
        keep: SessionId,
        current: &PasswordAttempt,
        new: Password,
    ) -> Result<(), Error> {
        self.confirm_password(user, current).await?;
        let hash = self.ports.hash(&new).await?;
        if !self.ports.users.set_password(user, hash).await? {
            return Err(Error::AccountGone);
        }
        // A reset link mailed before would undo the change.
        self.ports
            .tokens
            .revoke_tokens(user, TokenPurpose::ResetPassword)
            .await?;
        self.end_sessions(user, Some(keep)).await
    }

    async fn delete_account(&self, user: UserId, password: &PasswordAttempt) -> Result<(), Error> {
        self.confirm_password(user, password).await?;
        self.ports.users.delete_user(user).await?;
        self.events.publish(user, Change::SessionsEnded);
        Ok(())
    }

    async fn send_verification(&self, user: UserId) -> Result<(), Error> {
        let profile = self.profile(user).await?;
        let email = profile.email.clone().ok_or(Error::NoEmail)?;
        if profile.email_verified {
            return Err(Error::EmailAlreadyVerified);
        }
        self.ports
            .mail_token(&profile, email, TokenPurpose::VerifyEmail)
            .await
    }

    async fn verify_email(&self, token: &SecretToken) -> Result<(), Error> {
        let taken = self
            .ports
            .take_token(token, TokenPurpose::VerifyEmail)
            .await?;
        if self
            .ports
            .users
            .mark_email_verified(taken.user, &taken.email)
            .await?
        {
            Ok(())
        } else {
            Err(Error::InvalidToken)
        }
    }

    fn forgot_password(&self, email: Email) {
        let ports = Arc::clone(&self.ports);
        self.ports.spawner.spawn(Box::pin(async move {
            if let Err(error) = ports.forgot_password(email).await {
                tracing::warn!(%error, "could not prepare a password reset mail");
            }
        }));
    }

    async fn reset_password(&self, token: &SecretToken, new: Password) -> Result<(), Error> {
        // Hashed before the single-use token is taken: a hasher too busy now (503,
        // try again) must leave the link working for the retry.
        let hash = self.ports.hash(&new).await?;
        let taken = self
            .ports
            .take_token(token, TokenPurpose::ResetPassword)
            .await?;
        if !self.ports.users.set_password(taken.user, hash).await? {
            return Err(Error::InvalidToken);
        }
        // The link reached that address: it is theirs.
        self.ports
            .users
            .mark_email_verified(taken.user, &taken.email)
            .await?;
        self.end_sessions(taken.user, None).await
    }

    async fn prepare(&self) -> Result<(), Error> {
        self.decoy_hash().await.map(|_| ())
    }

    async fn purge_expired_tokens(&self) -> Result<u64, Error> {
        let now = self.ports.clock.now();
        Ok(self.ports.tokens.purge_expired_tokens(now).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{
        MockClock, MockEventPublisher, MockKeyGenerator, MockMailer, MockPasswordHasher,
        MockSessionRepository, MockTokenRepository, MockUserRepository, Task,
    };
    use crate::{Credentials, HashError, Timestamp};

    const ADA: UserId = UserId::new(7);
    const NOW: i64 = 1_795_586_834_123;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(NOW).unwrap()
    }

    fn ada() -> User {
        User {
            id: ADA,
            username: Username::parse("Ada").unwrap(),
            created_at: Timestamp::from_unix_millis(0).unwrap(),
        }
    }

    fn email(address: &str) -> Email {
        Email::parse(address).unwrap()
    }

    fn profile(address: Option<&str>, verified: bool) -> Profile {
        Profile {
            user: ada(),
            display_name: DisplayName::parse("Ada L.").unwrap(),
            email: address.map(email),
            email_verified: verified,
        }
    }

    fn stored_ada() -> Credentials {
        Credentials {
            user: ada(),
            password_hash: PasswordHash::new("hash-of-ada"),
        }
    }

    /// Work handed to the spawner, run when the test says.
    #[derive(Default, Clone)]
    struct Deferred(Arc<Mutex<Vec<Task>>>);

    impl Spawner for Deferred {
        fn spawn(&self, task: Task) {
            self.0.lock().unwrap().push(task);
        }
    }

    impl Deferred {
        async fn run(&self) {
            let tasks = std::mem::take(&mut *self.0.lock().unwrap());
            for task in tasks {
                task.await;
            }
        }
    }

    /// The ports as mocks that expect nothing; each test says what it expects.
    struct Mocks {
        users: MockUserRepository,
        sessions: MockSessionRepository,
        tokens: MockTokenRepository,
        hasher: MockPasswordHasher,
        keys: MockKeyGenerator,
        mailer: MockMailer,
        events: MockEventPublisher,
        spawner: Deferred,
    }

    impl Mocks {
        fn new() -> Self {
            let mut keys = MockKeyGenerator::new();
            keys.expect_secret_token()
                .returning(|| SecretToken::new("mailed-token"));
            Self {
                users: MockUserRepository::new(),
                sessions: MockSessionRepository::new(),
                tokens: MockTokenRepository::new(),
                hasher: MockPasswordHasher::new(),
                keys,
                mailer: MockMailer::new(),
                events: MockEventPublisher::new(),
                spawner: Deferred::default(),
            }
        }

        /// A hasher whose hash of anything is `"hashed"`.
        fn hashing(mut self) -> Self {
            self.hasher
                .expect_hash()
                .returning(|_| Ok(PasswordHash::new("hashed")));
            self
        }

        /// A stored Ada whose password is `"open sesame"`.
        fn with_password(mut self) -> Self {
            self.users
                .expect_find_credentials_of()
                .with(eq(ADA))
                .returning(|_| Ok(Some(stored_ada())));
            self.hasher
                .expect_verify()
                .returning(|attempt, _| Ok(attempt.expose() == "open sesame"));
            self
        }

        /// Expects one token for `purpose` stored as a digest, and mailed to `to`.
        fn mails(mut self, purpose: TokenPurpose, to: &'static str) -> Self {
            self.tokens
                .expect_issue_token()
                .withf(move |token| {
                    token.digest == SecretToken::new("mailed-token").digest()
                        && token.user == ADA
                        && token.purpose == purpose
                        && token.email.as_str() == to
                        && token.expires_at == now().saturating_add(purpose.lifetime())
                })
                .times(1)
                .returning(|_| Ok(()));
            self.mailer
                .expect_send()
                .withf(move |mail| {
                    mail.to.as_str() == to
                        && mail.purpose == purpose
                        && mail.token.expose() == "mailed-token"
                })
                .times(1)
                .return_const(());
            self
        }

        fn expects_sessions_ended(mut self, keep: Option<SessionId>) -> Self {
            self.sessions
                .expect_delete_other_sessions()
                .with(eq(ADA), eq(keep))
                .times(1)
                .returning(|_, _| Ok(2));
            self.events
                .expect_publish()
                .with(eq(crate::Event::new(ADA, Change::SessionsEnded)))
                .times(1)
                .return_const(());
            self
        }

        fn service(self) -> (AccountService, Deferred) {
            let mut clock = MockClock::new();
            clock.expect_now().return_const(now());
            let spawner = self.spawner.clone();
            let service = AccountService::new(AccountPorts {
                users: Arc::new(self.users),
                sessions: Arc::new(self.sessions),
                tokens: Arc::new(self.tokens),
                hasher: Arc::new(self.hasher),
                keys: Arc::new(self.keys),
                mailer: Arc::new(self.mailer),
                clock: Arc::new(clock),
                spawner: Arc::new(self.spawner),
            })
            .with_events(Arc::new(self.events));
            (service, spawner)
        }
    }

    fn new_account(address: Option<&str>) -> NewAccount {
        NewAccount {
            username: Username::parse("Ada").unwrap(),
            password: Password::parse("correct horse").unwrap(),
            email: address.map(email),
        }
    }

    #[tokio::test]
    async fn sign_up_stores_the_hash_never_the_password_and_shows_the_username() {
        let mut mocks = Mocks::new();
        mocks
            .hasher
            .expect_hash()
            .withf(|p| p.expose() == "correct horse")
            .returning(|_| Ok(PasswordHash::new("hashed")));
        mocks
            .users
            .expect_insert_user()
            .withf(|u| {
                u.username.as_str() == "Ada"
                    && u.display_name.as_str() == "Ada"
                    && u.email.is_none()
                    && u.password_hash.as_str() == "hashed"
                    && u.created_at == now()
            })
            .returning(|_| Ok(ada()));
        mocks.mailer.expect_send().never();
        let (service, _) = mocks.service();
        assert_eq!(service.sign_up(new_account(None)).await.unwrap(), ada());
    }

    #[tokio::test]
    async fn sign_up_with_an_email_mails_a_link_to_verify_it() {
        let mut mocks = Mocks::new()
            .hashing()
            .mails(TokenPurpose::VerifyEmail, "Ada@Example.com");
        mocks
            .users
            .expect_insert_user()
            .withf(|u| u.email.as_ref().map(Email::as_str) == Some("Ada@Example.com"))
            .returning(|_| Ok(ada()));
        let (service, _) = mocks.service();
        service
            .sign_up(new_account(Some("Ada@Example.com")))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sign_up_says_which_of_name_and_email_is_taken() {
        for (email_owner, expected) in [(true, "email"), (false, "username")] {
            let mut mocks = Mocks::new().hashing();
            mocks
                .users
                .expect_insert_user()
                .returning(|_| Err(StorageError::Conflict));
            mocks
                .users
                .expect_find_profile_by_email()
                .returning(
                    move |_| Ok(email_owner.then(|| profile(Some("ada@example.com"), true))),
                );
            mocks.mailer.expect_send().never();
            let (service, _) = mocks.service();
            let error = service
                .sign_up(new_account(Some("ada@example.com")))
                .await
                .unwrap_err();
            match expected {
                "email" => assert!(matches!(error, Error::EmailTaken), "{error:?}"),
                _ => assert!(matches!(error, Error::UsernameTaken), "{error:?}"),
            }
        }
    }

    #[tokio::test]
    async fn sign_up_reports_a_storage_outage_and_stores_nothing_when_hashing_fails() {
        let mut mocks = Mocks::new().hashing();
        mocks
            .users
            .expect_insert_user()
            .returning(|_| Err(StorageError::Unavailable("connection refused".into())));
        let (service, _) = mocks.service();
        let error = service.sign_up(new_account(None)).await.unwrap_err();
        assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");

        let mut mocks = Mocks::new();
        mocks
            .hasher
            .expect_hash()
            .returning(|_| Err(HashError::new("out of memory")));
        mocks.users.expect_insert_user().never();
        let (service, _) = mocks.service();
        let error = service.sign_up(new_account(None)).await.unwrap_err();
        assert!(matches!(error, Error::Hashing(_)), "{error:?}");
    }

    #[tokio::test]
    async fn right_password_gives_the_user_and_a_wrong_one_does_not() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_credentials()
            .withf(|name| name.as_str() == "ADA")
            .returning(|_| Ok(Some(stored_ada())));
        mocks
            .hasher
            .expect_verify()
            .withf(|_, hash| hash.as_str() == "hash-of-ada")
            .returning(|attempt, _| Ok(attempt.expose() == "open sesame"));
        let (service, _) = mocks.service();
        let user = service
            .verify_credentials("ADA", &PasswordAttempt::new("open sesame"))
            .await
            .unwrap();
        assert_eq!(user, ada());
        let error = service
            .verify_credentials("ADA", &PasswordAttempt::new("wrong"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidCredentials), "{error:?}");
    }

    /// Prepared at start-up, the decoy is there before the first failed login.
    #[tokio::test]
    async fn the_decoy_is_made_at_start_up_not_by_the_first_failed_login() {
        let mut mocks = Mocks::new();
        mocks
            .hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok(PasswordHash::new("decoy")));
        mocks
            .users
            .expect_find_credentials()
            .returning(|_| Ok(None));
        mocks
            .hasher
            .expect_verify()
            .withf(|_, hash| hash.as_str() == "decoy")
            .returning(|_, _| Ok(false));
        let (service, _) = mocks.service();
        service.prepare().await.unwrap();
        for _ in 0..2 {
            let error = service
                .verify_credentials("nobody", &PasswordAttempt::new("password1"))
                .await
                .unwrap_err();
            assert!(matches!(error, Error::InvalidCredentials), "{error:?}");
        }
    }

    /// An unknown, a malformed and an over-long attempt each cost one verification
    /// against the decoy hash, which is made once.
    #[tokio::test]
    async fn failed_attempts_without_a_real_hash_verify_against_one_decoy() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_credentials()
            .with(eq(Username::parse("nobody").unwrap()))
            .returning(|_| Ok(None));
        mocks
            .users
            .expect_find_credentials()
            .with(eq(Username::parse("Ada").unwrap()))
            .returning(|_| Ok(Some(stored_ada())));
        mocks
            .hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok(PasswordHash::new("decoy")));
        mocks
            .hasher
            .expect_verify()
            .times(3)
            .withf(|_, hash| hash.as_str() == "decoy")
            .returning(|_, _| Ok(false));
        let (service, _) = mocks.service();

        let too_long = "x".repeat(Password::MAX_BYTES + 1);
        for (name, password) in [
            ("nobody", "password1"),
            ("no such name!", "password1"),
            ("Ada", too_long.as_str()),
        ] {
            let error = service
                .verify_credentials(name, &PasswordAttempt::new(password))
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidCredentials),
                "{name}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_new_password_needs_the_current_one_and_ends_the_other_sessions() {
        let keep = SessionId::new(4);
        let mut mocks = Mocks::new()
            .with_password()
            .hashing()
            .expects_sessions_ended(Some(keep));
        mocks
            .users
            .expect_set_password()
            .withf(|user, hash| *user == ADA && hash.as_str() == "hashed")
            .times(1)
            .returning(|_, _| Ok(true));
        mocks
            .tokens
            .expect_revoke_tokens()
            .with(eq(ADA), eq(TokenPurpose::ResetPassword))
            .times(1)
            .returning(|_, _| Ok(()));
        let (service, _) = mocks.service();
        let new = Password::parse("new password").unwrap();

        let error = service
            .change_password(ADA, keep, &PasswordAttempt::new("guess"), new.clone())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::WrongPassword), "{error:?}");
        service
            .change_password(ADA, keep, &PasswordAttempt::new("open sesame"), new)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn deleting_the_account_needs_the_password_and_closes_its_connections() {
        let mut mocks = Mocks::new().with_password();
        mocks
            .users
            .expect_delete_user()
            .with(eq(ADA))
            .times(1)
            .returning(|_| Ok(true));
        mocks
            .events
            .expect_publish()
            .with(eq(crate::Event::new(ADA, Change::SessionsEnded)))
            .times(1)
            .return_const(());
        let (service, _) = mocks.service();
        let error = service
            .delete_account(ADA, &PasswordAttempt::new("guess"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::WrongPassword), "{error:?}");
        service
            .delete_account(ADA, &PasswordAttempt::new("open sesame"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_new_email_is_mailed_a_link_and_the_same_one_in_other_case_is_no_change() {
        let mut mocks = Mocks::new().mails(TokenPurpose::VerifyEmail, "new@example.com");
        mocks
            .users
            .expect_find_profile()
            .returning(|_| Ok(Some(profile(Some("ada@example.com"), true))));
        mocks
            .users
            .expect_update_profile()
            .withf(|_, change| {
                change.email == Some(Some(email("new@example.com")))
                    && change.display_name.is_none()
            })
            .times(1)
            .returning(|_, _| Ok(Some(profile(Some("new@example.com"), false))));
        mocks
            .tokens
            .expect_revoke_tokens()
            .with(eq(ADA), eq(TokenPurpose::ResetPassword))
            .times(1)
            .returning(|_, _| Ok(()));
        let (service, _) = mocks.service();

        let same = ProfileChange {
            email: Some(Some(email("ADA@example.com"))),
            ..ProfileChange::default()
        };
        let unchanged = service.update_profile(ADA, same).await.unwrap();
        assert!(unchanged.email_verified);

        let new = ProfileChange {
            email: Some(Some(email("new@example.com"))),
            ..ProfileChange::default()
        };
        let changed = service.update_profile(ADA, new).await.unwrap();
        assert!(!changed.email_verified);
    }

    #[tokio::test]
    async fn an_email_another_account_has_is_taken() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_profile()
            .returning(|_| Ok(Some(profile(None, false))));
        mocks
            .users
            .expect_update_profile()
            .returning(|_, _| Err(StorageError::Conflict));
        mocks.mailer.expect_send().never();
        let (service, _) = mocks.service();
        let change = ProfileChange {
            email: Some(Some(email("bob@example.com"))),
            ..ProfileChange::default()
        };
        let error = service.update_profile(ADA, change).await.unwrap_err();
        assert!(matches!(error, Error::EmailTaken), "{error:?}");
    }

    #[tokio::test]
    async fn a_verification_mail_needs_an_unverified_address() {
        for (stored, expected) in [
            (profile(None, false), "no email"),
            (profile(Some("ada@example.com"), true), "verified"),
        ] {
            let mut mocks = Mocks::new();
            mocks
                .users
                .expect_find_profile()
                .returning(move |_| Ok(Some(stored.clone())));
            mocks.mailer.expect_send().never();
            let (service, _) = mocks.service();
            let error = service.send_verification(ADA).await.unwrap_err();
            match expected {
                "no email" => assert!(matches!(error, Error::NoEmail), "{error:?}"),
                _ => assert!(matches!(error, Error::EmailAlreadyVerified), "{error:?}"),
            }
        }
        let mut mocks = Mocks::new().mails(TokenPurpose::VerifyEmail, "ada@example.com");
        mocks
            .users
            .expect_find_profile()
            .returning(|_| Ok(Some(profile(Some("ada@example.com"), false))));
        let (service, _) = mocks.service();
        service.send_verification(ADA).await.unwrap();
    }

    fn token_for(purpose: TokenPurpose, expires_in_ms: i64) -> AccountToken {
        AccountToken {
            user: ADA,
            purpose,
            email: email("ada@example.com"),
            expires_at: Timestamp::from_unix_millis(NOW + expires_in_ms).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_verification_token_works_once_before_it_expires_for_the_address_it_was_sent_to() {
        let mut mocks = Mocks::new();
        let live = SecretToken::new("live");
        let expired = SecretToken::new("expired");
        let stale = SecretToken::new("for an old address");
        mocks
            .tokens
            .expect_take_token()
            .with(eq(live.digest()), eq(TokenPurpose::VerifyEmail))
            .times(1)
            .returning(|_, purpose| Ok(Some(token_for(purpose, 1))));
        mocks
            .tokens
            .expect_take_token()
            .with(eq(expired.digest()), eq(TokenPurpose::VerifyEmail))
            .returning(|_, purpose| Ok(Some(token_for(purpose, 0))));
        mocks
            .tokens
            .expect_take_token()
            .with(eq(stale.digest()), eq(TokenPurpose::VerifyEmail))
            .returning(|_, purpose| Ok(Some(token_for(purpose, 1000))));
        mocks.tokens.expect_take_token().returning(|_, _| Ok(None));
        let mut verified = 0;
        mocks
            .users
            .expect_mark_email_verified()
            .with(eq(ADA), eq(email("ada@example.com")))
            .times(2)
            .returning(move |_, _| {
                verified += 1;
                // The second: the account has another address by now.
                Ok(verified == 1)
            });
        let (service, _) = mocks.service();

        service.verify_email(&live).await.unwrap();
        for token in [&expired, &stale, &SecretToken::new("unknown")] {
            let error = service.verify_email(token).await.unwrap_err();
            assert!(matches!(error, Error::InvalidToken), "{token:?}: {error:?}");
        }
    }

    #[tokio::test]
    async fn forgetting_a_password_answers_before_looking_and_mails_only_an_account() {
        let mut mocks = Mocks::new().mails(TokenPurpose::ResetPassword, "Ada@Example.com");
        mocks
            .users
            .expect_find_profile_by_email()
            .with(eq(email("ada@example.com")))
            .returning(|_| Ok(Some(profile(Some("Ada@Example.com"), false))));
        mocks
            .users
            .expect_find_profile_by_email()
            .returning(|_| Ok(None));
        let (service, background) = mocks.service();

        service.forgot_password(email("ada@example.com"));
        service.forgot_password(email("nobody@example.com"));
        // Nothing was looked up before the answer; the work is in the background.
        background.run().await;
    }

    #[tokio::test]
    async fn a_reset_the_hasher_is_too_busy_for_leaves_the_link_working() {
        let mut mocks = Mocks::new();
        mocks
            .hasher
            .expect_hash()
            .returning(|_| Err(HashError::Busy));
        mocks.tokens.expect_take_token().never();
        let (service, _) = mocks.service();

        let refused = service
            .reset_password(
                &SecretToken::new("reset"),
                Password::parse("brand new one").unwrap(),
            )
            .await;
        assert!(matches!(refused, Err(Error::Busy)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_login_the_hasher_is_too_busy_for_is_not_counted_as_a_failure() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_credentials()
            .returning(|_| Ok(Some(stored_ada())));
        let busy = Arc::new(Mutex::new(true));
        let hasher_busy = Arc::clone(&busy);
        mocks.hasher.expect_verify().returning(move |attempt, _| {
            if *hasher_busy.lock().unwrap() {
                Err(HashError::Busy)
            } else {
                Ok(attempt.expose() == "open sesame")
            }
        });
        let (service, _) = mocks.service();
        let service = service.with_failed_login_limit(FailedLoginLimit {
            failures: std::num::NonZeroU32::new(2).unwrap(),
            window: std::time::Duration::from_secs(900),
        });
        let wrong = PasswordAttempt::new("not it");

        for _ in 0..5 {
            let refused = service.verify_credentials("ada", &wrong).await;
            assert!(matches!(refused, Err(Error::Busy)), "{refused:?}");
        }
        *busy.lock().unwrap() = false;
        for _ in 0..2 {
            let refused = service.verify_credentials("ADA", &wrong).await;
            assert!(
                matches!(refused, Err(Error::InvalidCredentials)),
                "{refused:?}"
            );
        }
        let suspended = service
            .verify_credentials("ada", &PasswordAttempt::new("open sesame"))
            .await;
        assert!(
            matches!(suspended, Err(Error::LoginsSuspended { .. })),
            "two failures, not seven: {suspended:?}"
        );
    }

    #[tokio::test]
    async fn a_reset_sets_the_password_verifies_the_address_and_ends_every_session() {
        let mut mocks = Mocks::new().hashing().expects_sessions_ended(None);
        let token = SecretToken::new("reset");
        mocks
            .tokens
            .expect_take_token()
            .with(eq(token.digest()), eq(TokenPurpose::ResetPassword))
            .times(1)
            .returning(|_, purpose| Ok(Some(token_for(purpose, 1))));
        mocks.tokens.expect_take_token().returning(|_, _| Ok(None));
        mocks
            .users
            .expect_set_password()
            .withf(|user, hash| *user == ADA && hash.as_str() == "hashed")
            .times(1)
            .returning(|_, _| Ok(true));
        mocks
            .users
            .expect_mark_email_verified()
            .times(1)
            .returning(|_, _| Ok(true));
        let (service, _) = mocks.service();
        let new = Password::parse("brand new one").unwrap();

        service.reset_password(&token, new.clone()).await.unwrap();
        let error = service.reset_password(&token, new).await.unwrap_err();
        assert!(matches!(error, Error::InvalidToken), "{error:?}");
    }
}
