use std::sync::OnceLock;

use async_trait::async_trait;

use crate::ports::{Clock, PasswordHasher, UserRepository};
use crate::use_cases::Accounts;
use crate::{
    Error, NewUser, Password, PasswordAttempt, PasswordHash, StorageError, User, Username,
};

/// Signing up and checking credentials.
#[derive(Debug)]
pub struct AccountService<U, H, C> {
    users: U,
    hasher: H,
    clock: C,
    decoy_hash: OnceLock<PasswordHash>,
}

impl<U, H, C> AccountService<U, H, C>
where
    U: UserRepository,
    H: PasswordHasher,
    C: Clock,
{
    /// A service storing users in `users`, hashing with `hasher`, dating with `clock`.
    pub fn new(users: U, hasher: H, clock: C) -> Self {
        Self {
            users,
            hasher,
            clock,
            decoy_hash: OnceLock::new(),
        }
    }

    /// A hash made by this hasher, at its cost, of a password no account has; made
    /// once, on first need.
    async fn decoy_hash(&self) -> Result<&PasswordHash, Error> {
        if let Some(hash) = self.decoy_hash.get() {
            return Ok(hash);
        }
        let decoy = Password::parse("decoy password of no account")?;
        let hash = self.hasher.hash(&decoy).await.map_err(Error::Hashing)?;
        Ok(self.decoy_hash.get_or_init(|| hash))
    }
}

#[async_trait]
impl<U, H, C> Accounts for AccountService<U, H, C>
where
    U: UserRepository,
    H: PasswordHasher,
    C: Clock,
{
    async fn sign_up(&self, username: Username, password: Password) -> Result<User, Error> {
        let password_hash = self.hasher.hash(&password).await.map_err(Error::Hashing)?;
        let new_user = NewUser {
            username,
            password_hash,
            created_at: self.clock.now(),
        };
        match self.users.insert_user(new_user).await {
            Err(StorageError::Conflict) => Err(Error::UsernameTaken),
            result => Ok(result?),
        }
    }

    async fn verify_credentials(
        &self,
        username: &str,
        password: &PasswordAttempt,
    ) -> Result<User, Error> {
        let stored = match Username::parse(username) {
            Ok(username) => self.users.find_credentials(&username).await?,
            Err(_) => None,
        };
        // Signup refuses longer passwords, and a hasher may truncate longer input, so
        // such an attempt must never be verified against a real hash.
        let fits = password.expose().len() <= Password::MAX_BYTES;
        match stored {
            Some(credentials) if fits => {
                let matches = self
                    .hasher
                    .verify(password, &credentials.password_hash)
                    .await
                    .map_err(Error::Hashing)?;
                if matches {
                    Ok(credentials.user)
                } else {
                    Err(Error::InvalidCredentials)
                }
            }
            _ => {
                let decoy = self.decoy_hash().await?;
                self.hasher
                    .verify(password, decoy)
                    .await
                    .map_err(Error::Hashing)?;
                Err(Error::InvalidCredentials)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{MockClock, MockPasswordHasher, MockUserRepository};
    use crate::{Credentials, HashError, Timestamp, UserId};

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .return_const(Timestamp::from_unix_millis(1_795_586_834_123).unwrap());
        clock
    }

    fn ada() -> User {
        User {
            id: UserId::new(7),
            username: Username::parse("Ada").unwrap(),
            created_at: Timestamp::from_unix_millis(0).unwrap(),
        }
    }

    fn stored_ada() -> Credentials {
        Credentials {
            user: ada(),
            password_hash: PasswordHash::new("hash-of-ada"),
        }
    }

    /// A hasher whose every hash is `"hashed"`.
    fn hashing() -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_hash()
            .returning(|_| Ok(PasswordHash::new("hashed")));
        hasher
    }

    async fn sign_up(
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        password: &str,
    ) -> Result<User, Error> {
        AccountService::new(users, hasher, clock())
            .sign_up(
                Username::parse("Ada").unwrap(),
                Password::parse(password).unwrap(),
            )
            .await
    }

    #[tokio::test]
    async fn sign_up_stores_the_hash_never_the_password() {
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_hash()
            .withf(|p| p.expose() == "correct horse")
            .returning(|_| Ok(PasswordHash::new("hashed")));
        let mut users = MockUserRepository::new();
        users
            .expect_insert_user()
            .withf(|u| {
                u.username.as_str() == "Ada"
                    && u.password_hash.as_str() == "hashed"
                    && u.created_at.unix_millis() == 1_795_586_834_123
            })
            .returning(|_| Ok(ada()));

        let user = sign_up(users, hasher, "correct horse").await.unwrap();
        assert_eq!(user, ada());
    }

    #[tokio::test]
    async fn sign_up_with_a_taken_name_is_a_conflict() {
        let mut users = MockUserRepository::new();
        users
            .expect_insert_user()
            .returning(|_| Err(StorageError::Conflict));

        let error = sign_up(users, hashing(), "12345678").await.unwrap_err();
        assert!(matches!(error, Error::UsernameTaken), "{error:?}");
    }

    #[tokio::test]
    async fn sign_up_reports_a_storage_outage() {
        let mut users = MockUserRepository::new();
        users
            .expect_insert_user()
            .returning(|_| Err(StorageError::Unavailable("connection refused".into())));

        let error = sign_up(users, hashing(), "12345678").await.unwrap_err();
        assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn sign_up_stores_nothing_when_hashing_fails() {
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_hash()
            .returning(|_| Err(HashError::new("out of memory")));
        let mut users = MockUserRepository::new();
        users.expect_insert_user().never();

        let error = sign_up(users, hasher, "12345678").await.unwrap_err();
        assert!(matches!(error, Error::Hashing(_)), "{error:?}");
    }

    #[tokio::test]
    async fn right_password_gives_the_user() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_credentials()
            .withf(|name| name.as_str() == "ADA")
            .returning(|_| Ok(Some(stored_ada())));
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .withf(|attempt, hash| {
                attempt.expose() == "open sesame" && hash.as_str() == "hash-of-ada"
            })
            .returning(|_, _| Ok(true));
        let service = AccountService::new(users, hasher, clock());

        let user = service
            .verify_credentials("ADA", &PasswordAttempt::new("open sesame"))
            .await
            .unwrap();
        assert_eq!(user, ada());
    }

    #[tokio::test]
    async fn wrong_password_is_invalid_credentials() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_credentials()
            .returning(|_| Ok(Some(stored_ada())));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().times(1).returning(|_, _| Ok(false));
        let service = AccountService::new(users, hasher, clock());

        let error = service
            .verify_credentials("Ada", &PasswordAttempt::new("wrong"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidCredentials), "{error:?}");
    }

    /// An unknown, a malformed and an over-long attempt each cost one verification
    /// against the decoy hash, which is made once.
    #[tokio::test]
    async fn failed_attempts_without_a_real_hash_verify_against_one_decoy() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_credentials()
            .with(eq(Username::parse("nobody").unwrap()))
            .returning(|_| Ok(None));
        users
            .expect_find_credentials()
            .with(eq(Username::parse("Ada").unwrap()))
            .returning(|_| Ok(Some(stored_ada())));
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok(PasswordHash::new("decoy")));
        hasher
            .expect_verify()
            .times(3)
            .withf(|_, hash| hash.as_str() == "decoy")
            .returning(|_, _| Ok(false));
        let service = AccountService::new(users, hasher, clock());

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
    async fn login_reports_storage_outage_and_hasher_failure() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_credentials()
            .returning(|_| Err(StorageError::Unavailable("pool timed out".into())));
        let service = AccountService::new(users, MockPasswordHasher::new(), clock());
        let error = service
            .verify_credentials("Ada", &PasswordAttempt::new("password1"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");

        let mut users = MockUserRepository::new();
        users
            .expect_find_credentials()
            .returning(|_| Ok(Some(stored_ada())));
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .returning(|_, _| Err(HashError::new("corrupt hash")));
        let service = AccountService::new(users, hasher, clock());
        let error = service
            .verify_credentials("Ada", &PasswordAttempt::new("password1"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Hashing(_)), "{error:?}");
    }
}
