//! Secrets for the domain's ports: [`PasswordHasher`] on bcrypt, and the random
//! keys of sessions ([`RandomKeys`], the `KeyGenerator` port).
//!
//! A bcrypt hash at cost 12 takes a fifth to a third of a second of CPU. So
//! [`BcryptHasher`] never hashes on an async worker: it has threads of its own (by
//! default one per core), which bounds how many hashes run at once, and a login flood
//! queues behind them. Those threads run at the operating system's idle priority
//! (`SCHED_IDLE` on Linux): the scheduler gives the CPU to request handling first, and
//! hashing takes every cycle left over, so logins still go as fast as the machine
//! allows while the rest of the API keeps its latency.
//!
//! The queue is bounded: past a few waiting passwords per thread, [`BcryptHasher`]
//! refuses at once ([`HashError::Busy`]) instead of queueing, so that a flood of
//! logins from many addresses leaves every caller an answer within a second or two
//! (a refusal the API turns into 503 with `Retry-After`), never a wait that grows with
//! the flood.

mod keys;

pub use keys::RandomKeys;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chatbot_domain::ports::PasswordHasher;
use chatbot_domain::{HashError, Password, PasswordAttempt, PasswordHash};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords with bcrypt at a fixed cost, on its own threads.
/// Clones share the threads; they stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct BcryptHasher {
    cost: u32,
    jobs: Sender<Job>,
    /// Jobs queued or running, shared by the clones.
    taken: Arc<AtomicUsize>,
    /// How many jobs may be queued or running at once.
    capacity: usize,
}

/// The hasher cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A cost outside what bcrypt accepts.
    #[error("bcrypt cost must be between {min} and {max}, not {0}", min = BcryptHasher::MIN_COST, max = BcryptHasher::MAX_COST)]
    InvalidCost(u32),
    /// A hashing thread could not be started.
    #[error("cannot start a password hashing thread: {0}")]
    Spawn(#[from] std::io::Error),
}

impl BcryptHasher {
    /// The cheapest cost bcrypt accepts; for tests only.
    pub const MIN_COST: u32 = 4;
    /// The dearest cost bcrypt accepts.
    pub const MAX_COST: u32 = 31;
    /// The production default.
    pub const DEFAULT_COST: u32 = 12;

    /// A hasher at `cost` hashing on `threads` threads (at least one), with up to
    /// `waiting_per_thread` more passwords per thread waiting their turn.
    ///
    /// # Errors
    /// [`BuildError`] when `cost` is outside bcrypt's range or a thread cannot start.
    pub fn new(cost: u32, threads: usize, waiting_per_thread: usize) -> Result<Self, BuildError> {
        if !(Self::MIN_COST..=Self::MAX_COST).contains(&cost) {
            return Err(BuildError::InvalidCost(cost));
        }
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("bcrypt-{index}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self {
            cost,
            jobs,
            taken: Arc::new(AtomicUsize::new(0)),
            capacity: threads.saturating_mul(waiting_per_thread.saturating_add(1)),
        })
    }

    /// A hasher at `cost` with one hashing thread per core, and up to
    /// `waiting_per_thread` more passwords per thread waiting their turn.
    ///
    /// # Errors
    /// [`BuildError`] when `cost` is outside bcrypt's range or a thread cannot start.
    pub fn with_core_count(cost: u32, waiting_per_thread: usize) -> Result<Self, BuildError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cost, cores, waiting_per_thread)
    }

    /// Runs `task` on a hashing thread, once one is free; refuses at once when the
    /// queue is full.
    async fn run<T, F>(&self, task: F) -> Result<T, HashError>
    where
        F: FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
        T: Send + 'static,
    {
        let slot = Slot::take(&self.taken, self.capacity).ok_or(HashError::Busy)?;
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // A caller that has gone (a client that hung up) needs no answer: skip
                // the work, so that a flood of abandoned logins drains at once.
                let outcome = (!reply.is_closed()).then(task);
                // The place is free before the answer leaves: whoever it reaches finds
                // room for the next password.
                drop(slot);
                if let Some(outcome) = outcome {
                    let _ = reply.send(outcome);
                }
            }))
            .map_err(|_| HashError::new("the password hashing threads have stopped"))?;
        outcome
            .await
            .map_err(HashError::new)?
            .map_err(HashError::new)
    }
}

/// A place in the queue, given back when dropped: when its job has run, was skipped,
/// or was never run at all.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place among `capacity`, if one is free.
    fn take(taken: &Arc<AtomicUsize>, capacity: usize) -> Option<Self> {
        taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < capacity).then_some(count + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(taken)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hashing thread: lowers its priority, then runs jobs until the hasher is gone.
fn work(queue: &Mutex<Receiver<Job>>) {
    yield_to_requests();
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Puts this thread at idle priority, so request handling always comes first.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    let lowered = {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
    };
    #[cfg(not(target_os = "linux"))]
    let lowered =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
    if let Err(error) = lowered {
        tracing::warn!(?error, "password hashing runs at normal priority");
    }
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.expose().to_owned();
        let cost = self.cost;
        // bcrypt reads 72 bytes of key: the password and its NUL terminator while they
        // fit. A password of exactly 72 bytes is read whole, only the terminator left
        // out, yet `non_truncating_hash` refuses it as truncated; so the length is
        // checked here (`Password` makes sure of it already) and the plain call hashes.
        self.run(move || {
            if password.len() > Password::MAX_BYTES {
                return Err(bcrypt::BcryptError::Truncation(password.len()));
            }
            bcrypt::hash(password, cost)
        })
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
        self.run(move || bcrypt::verify(attempt, &hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds a hashing thread with a job until `release` sends: the job, to await,
    /// and `release`. Returns once the job runs.
    fn occupy(
        hasher: &BcryptHasher,
    ) -> (
        tokio::task::JoinHandle<Result<bool, HashError>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (occupied, started) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                let hold = move || {
                    let _ = occupied.send(());
                    Ok(gate.recv().is_ok())
                };
                hasher.run(hold).await
            }
        });
        started.recv().unwrap();
        (busy, release)
    }

    #[tokio::test]
    async fn verifies_the_password_it_hashed_and_nothing_else() {
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 2, 1).unwrap();
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
    async fn passwords_of_exactly_72_bytes_are_hashed_whole() {
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 1, 1).unwrap();
        for longest in ["x".repeat(72), format!("{}{}", "é".repeat(35), "xy")] {
            assert_eq!(longest.len(), Password::MAX_BYTES);
            let password = Password::parse(&longest).unwrap();
            let hash = hasher.hash(&password).await.unwrap();
            assert!(hasher.verify(&password.into(), &hash).await.unwrap());
            // Every one of the 72 bytes counts: change the last, and it does not match.
            let mut other = longest.clone();
            other.pop();
            other.push('z');
            let other = PasswordAttempt::new(other);
            assert!(!hasher.verify(&other, &hash).await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_corrupt_hash_is_an_error_not_a_match() {
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 1, 1).unwrap();
        let result = hasher
            .verify(
                &PasswordAttempt::new("whatever1"),
                &PasswordHash::new("not a hash"),
            )
            .await;
        assert!(result.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_hashes_at_once_queue_and_all_complete() {
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 2, 8).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    let password = Password::parse(&format!("password {i}")).unwrap();
                    let hash = hasher.hash(&password).await.unwrap();
                    hasher.verify(&password.into(), &hash).await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_for_callers_that_have_gone_is_skipped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;

        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 1, 8).unwrap();
        let (busy, release) = occupy(&hasher);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let done = Arc::clone(&done);
            let abandoned = hasher.run(move || Ok(done.fetch_add(1, Ordering::SeqCst)));
            // Polled once, which queues the job, then dropped: a client that hung up.
            let gone = tokio::time::timeout(Duration::ZERO, abandoned).await;
            assert!(gone.is_err());
        }
        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        let count = Arc::clone(&done);
        let after = hasher.run(move || Ok(count.load(Ordering::SeqCst))).await;
        assert_eq!(after.unwrap(), 0, "no abandoned job ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_takes_again_once_it_drains() {
        // One thread, one waiting: the third password is refused without waiting.
        let hasher = BcryptHasher::new(BcryptHasher::MIN_COST, 1, 1).unwrap();
        let (busy, release) = occupy(&hasher);
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(|| Ok("waited")).await }
        });
        while hasher.taken.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let password = Password::parse("correct horse battery").unwrap();
        assert!(matches!(hasher.hash(&password).await, Err(HashError::Busy)));

        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        assert_eq!(waiting.await.unwrap().unwrap(), "waited");
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hasher.verify(&password.into(), &hash).await.unwrap());
        assert_eq!(
            hasher.taken.load(Ordering::Acquire),
            0,
            "every place given back"
        );
    }

    #[test]
    fn refuses_costs_bcrypt_does_not_accept() {
        assert!(matches!(
            BcryptHasher::new(3, 1, 1),
            Err(BuildError::InvalidCost(3))
        ));
        assert!(BcryptHasher::new(32, 1, 1).is_err());
        assert!(BcryptHasher::with_core_count(BcryptHasher::DEFAULT_COST, 1).is_ok());
    }
}
