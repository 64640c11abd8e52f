//! The domain's [`PasswordHasher`] port on bcrypt.
//!
//! A bcrypt hash at cost 12 takes a third of a second of CPU. [`BcryptHasher`] runs
//! each one on tokio's blocking thread pool, never on an async worker, and lets at
//! most a bounded number run at once (by default one per core): a flood of logins
//! queues for the CPU instead of starving every other request.

use std::sync::Arc;

use async_trait::async_trait;
use chatbot_domain::ports::PasswordHasher;
use chatbot_domain::{HashError, Password, PasswordAttempt, PasswordHash};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords with bcrypt at a fixed cost.
#[derive(Debug, Clone)]
pub struct BcryptHasher {
    cost: u32,
    permits: Arc<Semaphore>,
}

/// A bcrypt cost outside what bcrypt accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bcrypt cost must be between {min} and {max}, not {0}", min = BcryptHasher::MIN_COST, max = BcryptHasher::MAX_COST)]
pub struct InvalidCost(pub u32);

impl BcryptHasher {
    /// The cheapest cost bcrypt accepts; for tests only.
    pub const MIN_COST: u32 = 4;
    /// The dearest cost bcrypt accepts.
    pub const MAX_COST: u32 = 31;
    /// The production default.
    pub const DEFAULT_COST: u32 = 12;

    /// A hasher at `cost` running at most `concurrency` hashes at once (at least one).
    ///
    /// # Errors
    /// [`InvalidCost`] when `cost` is outside bcrypt's range.
    pub fn new(cost: u32, concurrency: usize) -> Result<Self, InvalidCost> {
        if !(Self::MIN_COST..=Self::MAX_COST).contains(&cost) {
            return Err(InvalidCost(cost));
        }
        Ok(Self {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    /// A hasher at `cost` running at most one hash per core at once.
    ///
    /// # Errors
    /// [`InvalidCost`] when `cost` is outside bcrypt's range.
    pub fn with_core_count(cost: u32) -> Result<Self, InvalidCost> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cost, cores)
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn bounded<T, F>(&self, work: F) -> Result<T, HashError>
    where
        F: FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(HashError::new)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(HashError::new)?
            .map_err(HashError::new)
    }
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.expose().to_owned();
        let cost = self.cost;
        // `Password` is at most 72 bytes; the non-truncating call makes sure of it.
        self.bounded(move || bcrypt::non_truncating_hash(password, cost))
            .await
            .map(PasswordHash::new)
    }

    async fn verify(
        &self,
        attempt: &PasswordAttempt,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        let attempt = attempt.expose().to_owned();
        let hash = hash.as_str().to_owned();
        // Truncating on purpose: the domain never checks an over-long attempt against
        // a real hash, only against its decoy, and that check must cost the same.
        self.bounded(move || bcrypt::verify(attempt, &hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_the_password_it_hashed_and_nothing_else() {
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 2).unwrap();
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hasher.hash(&password).await.unwrap();

        assert!(
            hash.as_str().starts_with("$2b$04$"),
            "bcrypt at the given cost"
        );
        assert!(!hash.as_str().contains("correct horse"));
        assert!(
            hasher
                .verify(&password.clone().into(), &hash)
                .await
                .unwrap()
        );
        let wrong = PasswordAttempt::new("correct horse battery!");
        assert!(!hasher.verify(&wrong, &hash).await.unwrap());
        let over_long = PasswordAttempt::new("x".repeat(100));
        assert!(!hasher.verify(&over_long, &hash).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_hash_is_an_error_not_a_match() {
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 1).unwrap();
        let result = hasher
            .verify(
                &PasswordAttempt::new("whatever1"),
                &PasswordHash::new("not a hash"),
            )
            .await;
        assert!(result.is_err());
    }

    #[test]
    fn refuses_costs_bcrypt_does_not_accept() {
        assert_eq!(BcryptHasher::new(3, 1).unwrap_err(), InvalidCost(3));
        assert!(BcryptHasher::new(32, 1).is_err());
        assert!(BcryptHasher::with_core_count(BcryptHasher::DEFAULT_COST).is_ok());
    }
}
