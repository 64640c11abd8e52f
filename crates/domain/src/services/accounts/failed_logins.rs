//! Failed logins counted per username: the per-address limits of the HTTP layer do
//! not stop one account's password from being guessed from many addresses at once.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::Timestamp;

/// How many logins with one username may fail within a window; past that, its logins
/// are refused, right password or not, until the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedLoginLimit {
    /// Failures allowed within [`FailedLoginLimit::window`].
    pub failures: NonZeroU32,
    /// How long failures count, from the first of them.
    pub window: Duration,
}

/// The usernames with recent failed logins. Each attempt counts as a failure from the
/// moment it starts, so a burst of concurrent guesses meets the limit as surely as a
/// sequence does; a success forgets the name, an attempt that was not judged (the
/// hasher refused it) is given back.
#[derive(Debug)]
pub(super) struct FailedLogins {
    limit: FailedLoginLimit,
    strikes: Mutex<HashMap<String, Strikes>>,
}

/// The failures of one username in its current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    since: Timestamp,
}

impl FailedLogins {
    /// Past this many names, the expired ones are dropped before another is added.
    /// An attacker adds names only as fast as passwords are hashed, so the live ones
    /// stay far fewer.
    const PRUNE_AT: usize = 10_000;

    /// Counting failures against `limit`.
    pub(super) fn new(limit: FailedLoginLimit) -> Self {
        Self {
            limit,
            strikes: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt to log in as `name` (normalised) at `now`.
    ///
    /// # Errors
    /// How long until logins as `name` are taken again, when its failures within the
    /// window have reached the limit; the attempt is then not counted.
    pub(super) fn attempt(&self, name: &str, now: Timestamp) -> Result<(), Duration> {
        let mut strikes = self.strikes.lock().unwrap_or_else(PoisonError::into_inner);
        if !strikes.contains_key(name) && strikes.len() >= Self::PRUNE_AT {
            strikes.retain(|_, strikes| !self.expired(strikes, now));
        }
        let entry = strikes.entry(name.to_owned()).or_insert(Strikes {
            count: 0,
            since: now,
        });
        if self.expired(entry, now) {
            *entry = Strikes {
                count: 0,
                since: now,
            };
        }
        if entry.count >= self.limit.failures.get() {
            let ends = entry.since.saturating_add(self.limit.window);
            return Err(ends.since(now));
        }
        entry.count += 1;
        Ok(())
    }

    /// The attempt as `name` succeeded: its earlier failures no longer count.
    pub(super) fn succeeded(&self, name: &str) {
        self.strikes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// The attempt as `name` was not judged (the hasher was busy or failed): it does
    /// not count as a failure.
    pub(super) fn not_judged(&self, name: &str) {
        let mut strikes = self.strikes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = strikes.get_mut(name) {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    fn expired(&self, strikes: &Strikes, now: Timestamp) -> bool {
        now.since(strikes.since) >= self.limit.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(failures: u32, window_seconds: u64) -> FailedLogins {
        FailedLogins::new(FailedLoginLimit {
            failures: NonZeroU32::new(failures).unwrap(),
            window: Duration::from_secs(window_seconds),
        })
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
            .unwrap()
            .saturating_add(Duration::from_secs(seconds))
    }

    #[test]
    fn the_limit_holds_within_the_window_and_lifts_when_it_ends() {
        let logins = limit(3, 900);
        for second in 0..3 {
            assert_eq!(logins.attempt("alice", at(second)), Ok(()));
        }
        assert_eq!(
            logins.attempt("alice", at(100)),
            Err(Duration::from_secs(800))
        );
        assert_eq!(logins.attempt("bob", at(100)), Ok(()), "other names go on");
        assert_eq!(logins.attempt("alice", at(900)), Ok(()), "a new window");
    }

    #[test]
    fn a_success_forgets_the_failures_and_an_unjudged_attempt_is_given_back() {
        let logins = limit(2, 900);
        logins.attempt("alice", at(0)).unwrap();
        logins.attempt("alice", at(1)).unwrap();
        logins.succeeded("alice");
        logins.attempt("alice", at(2)).unwrap();
        logins.attempt("alice", at(3)).unwrap();
        logins.not_judged("alice");
        assert_eq!(logins.attempt("alice", at(4)), Ok(()));
        assert!(logins.attempt("alice", at(5)).is_err());
    }

    #[test]
    fn expired_names_are_dropped_once_many_are_kept() {
        let logins = limit(1, 60);
        for index in 0..FailedLogins::PRUNE_AT {
            logins.attempt(&format!("user{index}"), at(0)).unwrap();
        }
        logins.attempt("late", at(61)).unwrap();
        let kept = logins.strikes.lock().unwrap();
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key("late"));
    }
}
