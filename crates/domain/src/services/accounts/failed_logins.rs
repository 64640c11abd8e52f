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
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    strikes: HashMap<String, Strikes>,
    /// How many names trigger the next sweep of expired ones: twice as many as the
    /// last sweep kept, so sweeps cost nothing on average however many names there are.
    sweep_at: usize,
}

/// The failures of one username in its current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    since: Timestamp,
}

impl FailedLogins {
    /// The fewest names that trigger a sweep of the expired ones.
    const SWEEP_AT: usize = 10_000;

    /// Counting failures against `limit`.
    pub(super) fn new(limit: FailedLoginLimit) -> Self {
        Self {
            limit,
            state: Mutex::new(State {
                strikes: HashMap::new(),
                sweep_at: Self::SWEEP_AT,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an attempt to log in as `name` (normalised) at `now`.
    ///
    /// # Errors
    /// How long until logins as `name` are taken again, when its failures within the
    /// window have reached the limit; the attempt is then not counted.
    pub(super) fn attempt(&self, name: &str, now: Timestamp) -> Result<(), Duration> {
        let mut state = self.state();
        let State { strikes, sweep_at } = &mut *state;
        if strikes.len() >= *sweep_at {
            strikes.retain(|_, strikes| !self.expired(strikes, now));
            *sweep_at = (strikes.len() * 2).max(Self::SWEEP_AT);
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
        self.state().strikes.remove(name);
    }

    /// The attempt as `name` was not judged (the hasher was busy or failed): it does
    /// not count as a failure, and a name left without failures is forgotten.
    pub(super) fn not_judged(&self, name: &str) {
        let mut state = self.state();
        if let Some(entry) = state.strikes.get_mut(name) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                state.strikes.remove(name);
            }
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
    fn expired_names_are_swept_once_many_are_kept_and_unjudged_ones_forgotten() {
        let logins = limit(1, 60);
        for index in 0..FailedLogins::SWEEP_AT {
            logins.attempt(&format!("user{index}"), at(0)).unwrap();
        }
        logins.attempt("late", at(61)).unwrap();
        assert_eq!(logins.state().strikes.len(), 1);
        assert!(logins.state().strikes.contains_key("late"));

        logins.not_judged("late");
        assert!(logins.state().strikes.is_empty());
    }
}
