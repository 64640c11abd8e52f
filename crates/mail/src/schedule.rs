//! The queue's bookkeeping, without threads or clocks: which mail goes next, when a
//! mail that failed is tried again, which mails have expired, how many may wait. The
//! mail thread keeps one behind its mutex and passes it the time at each step.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chatbot_domain::TokenPurpose;

use crate::config::Retry;

/// The most mails the queue holds, the one being sent included; past that
/// [`send`](chatbot_domain::ports::Mailer::send) drops new mail with an ERROR line.
///
/// The rate limits on the routes that send mail keep the queue far below this; the cap
/// is there so that memory stays bounded whatever happens to the relay.
pub const MAX_QUEUED: usize = 10_000;

/// Mails waiting to be sent, each with its own next attempt and backoff.
///
/// A new mail is due at once; mails are taken in the order they are due, mails due at
/// the same time in the order they came (so new mail goes out first in, first out). A
/// mail that failed is due again after its own delay: [`Retry::first`] after its first
/// failure, then twice as long each time up to [`Retry::max`]; the mails behind it do
/// not wait for it. A mail is never due after its link expires
/// ([`TokenPurpose::lifetime`] after it was queued), and from then on it is dropped.
#[derive(Debug)]
pub(crate) struct Schedule<T> {
    /// The mails waiting, by when they are due and then by arrival.
    waiting: BTreeMap<(Instant, u64), Scheduled<T>>,
    /// The same mails by when their link expires and then by arrival, to when they are
    /// due (their key in `waiting`).
    expiries: BTreeMap<(Instant, u64), Instant>,
    /// How many were taken to be sent and are not back yet (0 or 1 with one thread).
    in_flight: usize,
    retry: Retry,
    /// The most mails held, those in flight included.
    capacity: usize,
    /// How many mails were ever queued: the next one's rank.
    arrivals: u64,
}

/// A mail in the queue, with what the schedule knows of it.
#[derive(Debug)]
pub(crate) struct Scheduled<T> {
    /// What to send.
    pub(crate) payload: T,
    purpose: TokenPurpose,
    /// Its rank among all mails queued, for mails due at the same time.
    arrival: u64,
    queued_at: Instant,
    /// When its link stops working: it is dropped from then on.
    expires_at: Instant,
    /// When to try it (next).
    due: Instant,
    /// How many times it failed.
    failures: u32,
    /// How long to wait after its next failure.
    next_delay: Duration,
}

/// What [`Schedule::next`] found.
#[derive(Debug)]
pub(crate) struct Step<T> {
    /// The mails dropped because their link has expired.
    pub(crate) expired: Vec<Scheduled<T>>,
    /// What to do next.
    pub(crate) next: Next<T>,
}

/// What the mail thread should do next.
#[derive(Debug)]
pub(crate) enum Next<T> {
    /// Send this mail (now in flight), then report with
    /// [`Schedule::done`] or [`Schedule::retry`].
    Due(Scheduled<T>),
    /// Nothing is due before this time.
    WaitUntil(Instant),
    /// Nothing is waiting.
    Empty,
}

impl<T> Scheduled<T> {
    /// What its link is for.
    pub(crate) const fn purpose(&self) -> TokenPurpose {
        self.purpose
    }

    /// How many times it was tried and failed.
    pub(crate) const fn failures(&self) -> u32 {
        self.failures
    }

    /// How long it has been queued at `now`.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.queued_at)
    }
}

impl<T> Schedule<T> {
    /// An empty queue retrying after `retry`, holding at most `capacity` mails.
    pub(crate) const fn new(retry: Retry, capacity: usize) -> Self {
        Self {
            waiting: BTreeMap::new(),
            expiries: BTreeMap::new(),
            in_flight: 0,
            retry,
            capacity,
            arrivals: 0,
        }
    }

    /// How many mails are held: waiting or in flight.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len() + self.in_flight
    }

    /// Queues `payload`, a mail for `purpose`, due at `now`; gives it back if the queue
    /// is full.
    pub(crate) fn push(
        &mut self,
        payload: T,
        purpose: TokenPurpose,
        now: Instant,
    ) -> Result<(), T> {
        if self.len() >= self.capacity {
            return Err(payload);
        }
        let arrival = self.arrivals;
        self.arrivals += 1;
        // `now` plus a day at most cannot overflow; if it did, the mail would expire at
        // once rather than never.
        let expires_at = now.checked_add(purpose.lifetime()).unwrap_or(now);
        self.insert(Scheduled {
            payload,
            purpose,
            arrival,
            queued_at: now,
            expires_at,
            due: now,
            failures: 0,
            next_delay: self.retry.first,
        });
        Ok(())
    }

    fn insert(&mut self, job: Scheduled<T>) {
        self.expiries.insert((job.expires_at, job.arrival), job.due);
        self.waiting.insert((job.due, job.arrival), job);
    }

    /// What to do at `now`: the mails whose link has expired, taken out in the order
    /// they expired (to be logged), and the mail to send if one is due, else when to
    /// look again.
    pub(crate) fn next(&mut self, now: Instant) -> Step<T> {
        let mut expired = Vec::new();
        while let Some(entry) = self.expiries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (&(_, arrival), &due) = (entry.key(), entry.get());
            entry.remove();
            expired.extend(self.waiting.remove(&(due, arrival)));
        }
        let next = match self.waiting.first_key_value() {
            None => Next::Empty,
            Some((&(due, _), _)) if due > now => Next::WaitUntil(due),
            Some(_) => match self.waiting.pop_first() {
                Some((_, job)) => {
                    self.expiries.remove(&(job.expires_at, job.arrival));
                    self.in_flight += 1;
                    Next::Due(job)
                }
                None => Next::Empty,
            },
        };
        Step { expired, next }
    }

    /// The mail taken by [`next`](Self::next) is done with: sent, or refused for good.
    pub(crate) fn done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The mail taken by [`next`](Self::next) failed at `now` for a reason that may
    /// pass: it goes back, due after its delay (but not after its link expires), and
    /// its next delay doubles up to [`Retry::max`]. Returns how long it waits.
    pub(crate) fn retry(&mut self, mut job: Scheduled<T>, now: Instant) -> Duration {
        self.done();
        job.failures = job.failures.saturating_add(1);
        let due = now
            .checked_add(job.next_delay)
            .map_or(job.expires_at, |due| due.min(job.expires_at));
        job.due = due;
        job.next_delay = job.next_delay.saturating_mul(2).min(self.retry.max);
        self.insert(job);
        due.saturating_duration_since(now)
    }

    /// Empties the queue; returns how many mails were held (those in flight included).
    pub(crate) fn clear(&mut self) -> usize {
        let held = self.len();
        self.waiting.clear();
        self.expiries.clear();
        self.in_flight = 0;
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// 1 s doubling up to 8 s.
    fn schedule(capacity: usize) -> Schedule<&'static str> {
        Schedule::new(
            Retry {
                first: SECOND,
                max: 8 * SECOND,
            },
            capacity,
        )
    }

    /// The mail due at `now`, if any; fails on expired mail.
    fn due(queue: &mut Schedule<&'static str>, now: Instant) -> Option<Scheduled<&'static str>> {
        let Step { expired, next } = queue.next(now);
        assert!(expired.is_empty(), "{expired:?}");
        match next {
            Next::Due(job) => Some(job),
            Next::WaitUntil(_) | Next::Empty => None,
        }
    }

    fn wait_until(queue: &mut Schedule<&'static str>, now: Instant) -> Option<Instant> {
        match queue.next(now).next {
            Next::WaitUntil(at) => Some(at),
            Next::Due(job) => panic!("{job:?} is due"),
            Next::Empty => None,
        }
    }

    #[test]
    fn new_mail_goes_first_in_first_out() {
        let t0 = Instant::now();
        let mut queue = schedule(10);
        queue.push("a", TokenPurpose::VerifyEmail, t0).unwrap();
        // Queued at the same instant: arrival decides.
        queue.push("b", TokenPurpose::ResetPassword, t0).unwrap();
        queue
            .push("c", TokenPurpose::VerifyEmail, t0 + SECOND)
            .unwrap();
        assert_eq!(queue.len(), 3);
        let now = t0 + 2 * SECOND;
        let mut order = Vec::new();
        while let Some(job) = due(&mut queue, now) {
            assert_eq!(job.failures(), 0);
            order.push(job.payload);
            queue.done();
        }
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(queue.len(), 0);
        assert!(matches!(queue.next(now).next, Next::Empty));
    }

    #[test]
    fn a_failing_mail_backs_off_alone_and_the_others_go() {
        let t0 = Instant::now();
        let mut queue = schedule(10);
        queue
            .push("greylisted", TokenPurpose::ResetPassword, t0)
            .unwrap();
        queue.push("next", TokenPurpose::ResetPassword, t0).unwrap();

        // The first fails (a 451): back in 1 s; the one behind it goes at once.
        let greylisted = due(&mut queue, t0).unwrap();
        assert_eq!(greylisted.payload, "greylisted");
        assert_eq!(queue.len(), 2, "the one in flight counts");
        assert_eq!(queue.retry(greylisted, t0), SECOND);
        assert_eq!(queue.len(), 2);
        let next = due(&mut queue, t0).unwrap();
        assert_eq!(next.payload, "next");
        queue.done();
        // Mail queued while it waits goes first too.
        let t_late = t0 + SECOND / 2;
        queue
            .push("later", TokenPurpose::VerifyEmail, t_late)
            .unwrap();
        assert_eq!(due(&mut queue, t_late).unwrap().payload, "later");
        queue.done();
        assert_eq!(wait_until(&mut queue, t_late), Some(t0 + SECOND));

        // Its delays double, 1 s, 2 s, 4 s, then stay at the maximum, 8 s.
        let mut now = t0 + SECOND;
        for (failures, delay) in [(1, 2), (2, 4), (3, 8), (4, 8), (5, 8)] {
            let job = due(&mut queue, now).unwrap();
            assert_eq!(job.failures(), failures);
            assert_eq!(queue.retry(job, now), delay * SECOND);
            assert_eq!(wait_until(&mut queue, now), Some(now + delay * SECOND));
            assert!(due(&mut queue, now + delay * SECOND - Duration::from_millis(1)).is_none());
            now += delay * SECOND;
        }
    }

    #[test]
    fn each_mail_has_its_own_backoff_and_the_one_due_first_goes() {
        let t0 = Instant::now();
        let mut queue = schedule(10);
        queue.push("a", TokenPurpose::VerifyEmail, t0).unwrap();
        queue.push("b", TokenPurpose::VerifyEmail, t0).unwrap();
        // `a` fails twice (now 2 s between tries), `b` once (1 s).
        let a = due(&mut queue, t0).unwrap();
        queue.retry(a, t0);
        let b = due(&mut queue, t0).unwrap();
        queue.retry(b, t0 + SECOND / 2);
        let a = due(&mut queue, t0 + SECOND).unwrap();
        assert_eq!(a.payload, "a");
        assert_eq!(queue.retry(a, t0 + SECOND), 2 * SECOND); // due at 3 s
        let b = due(&mut queue, t0 + 3 * SECOND / 2).unwrap();
        assert_eq!(b.payload, "b");
        assert_eq!(b.failures(), 1);
        assert_eq!(queue.retry(b, t0 + 3 * SECOND / 2), 2 * SECOND); // due at 3.5 s
        // Both due: the one due first goes first, whatever the order they came in.
        queue
            .push("c", TokenPurpose::VerifyEmail, t0 + 2 * SECOND)
            .unwrap();
        let now = t0 + 10 * SECOND;
        let mut order = Vec::new();
        while let Some(job) = due(&mut queue, now) {
            order.push(job.payload);
            queue.done();
        }
        assert_eq!(order, ["c", "a", "b"]);
    }

    #[test]
    fn mail_is_dropped_once_its_link_has_expired() {
        let t0 = Instant::now();
        let reset = TokenPurpose::ResetPassword.lifetime();
        let mut queue = Schedule::new(
            Retry {
                first: SECOND,
                max: 20 * 60 * SECOND,
            },
            10,
        );
        queue
            .push("reset", TokenPurpose::ResetPassword, t0)
            .unwrap();
        queue.push("verify", TokenPurpose::VerifyEmail, t0).unwrap();
        // Both fail, again and again; each is tried until its link expires, never after.
        let mut now = t0;
        let mut tries = 0;
        let dropped = loop {
            let Step { expired, next } = queue.next(now);
            if !expired.is_empty() {
                break expired;
            }
            match next {
                Next::Due(job) => {
                    assert!(job.age(now) < reset);
                    tries += 1;
                    queue.retry(job, now);
                }
                Next::WaitUntil(at) => now = at,
                Next::Empty => unreachable!(),
            }
        };
        // The reset link expires first, at 30 minutes exactly: the last delay was cut short.
        assert_eq!(now, t0 + reset);
        assert_eq!(dropped.len(), 1);
        let reset_job = &dropped[0];
        assert_eq!(reset_job.payload, "reset");
        assert_eq!(reset_job.purpose(), TokenPurpose::ResetPassword);
        assert_eq!(reset_job.age(now), reset);
        // Tried at 0, 1, 3, 7, … 1023 s: 11 tries; the next, at 2047 s, would come after
        // 30 minutes.
        assert_eq!(reset_job.failures(), 11);
        assert_eq!(tries, 22, "both, 11 times each");
        assert_eq!(queue.len(), 1);

        // A mail never tried (the thread was busy) is dropped as well, with the others
        // expired by then, in the order they expired.
        queue
            .push("new-reset", TokenPurpose::ResetPassword, now)
            .unwrap();
        let later = t0 + TokenPurpose::VerifyEmail.lifetime() + reset;
        let Step { expired, next } = queue.next(later);
        let payloads: Vec<_> = expired.iter().map(|job| job.payload).collect();
        assert_eq!(payloads, ["new-reset", "verify"]);
        assert_eq!(expired[0].failures(), 0);
        assert_eq!(expired[1].failures(), 11);
        assert!(matches!(next, Next::Empty));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn mail_past_the_cap_is_given_back() {
        let t0 = Instant::now();
        let mut queue = Schedule::new(Retry::default(), MAX_QUEUED);
        for _ in 0..MAX_QUEUED {
            queue.push((), TokenPurpose::VerifyEmail, t0).unwrap();
        }
        assert_eq!(queue.len(), MAX_QUEUED);
        assert!(queue.push((), TokenPurpose::VerifyEmail, t0).is_err());
        // The one in flight still counts; once it is sent there is room for one more.
        let Next::Due(job) = queue.next(t0).next else {
            panic!("nothing due");
        };
        assert!(queue.push((), TokenPurpose::VerifyEmail, t0).is_err());
        // A retry always goes back, full or not.
        queue.retry(job, t0);
        assert_eq!(queue.len(), MAX_QUEUED);
        assert!(matches!(queue.next(t0).next, Next::Due(_)));
        queue.done();
        queue.push((), TokenPurpose::VerifyEmail, t0).unwrap();
        assert!(queue.push((), TokenPurpose::VerifyEmail, t0).is_err());
        assert_eq!(queue.clear(), MAX_QUEUED);
        assert_eq!(queue.len(), 0);
    }
}
