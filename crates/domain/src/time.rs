//! Points in time, and the system clock that reads them.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

use crate::ports::{Clock, Task, Timer};

/// An instant in UTC, with millisecond precision.
///
/// Milliseconds are what both databases keep and what the API shows, so every
/// timestamp is truncated once on creation: a value written and read back is equal
/// to itself on every backend. Displays as RFC 3339 with a `Z`:
/// `2026-11-25T06:07:14.123Z`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Truncates `instant` to whole milliseconds.
    pub fn from_datetime(instant: DateTime<Utc>) -> Self {
        let truncated = DateTime::from_timestamp_millis(instant.timestamp_millis());
        Self(truncated.unwrap_or(instant))
    }

    /// The instant `millis` milliseconds after the Unix epoch, if chrono can represent it.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The instant as a chrono value, for adapters that store or format it.
    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }

    /// The latest instant: the last millisecond of year 9999, the last that every
    /// storage format keeps and sorts correctly.
    pub fn max() -> Self {
        Self::from_unix_millis(253_402_300_799_999).unwrap_or(Self(DateTime::<Utc>::MAX_UTC))
    }

    /// The instant `duration` later, or [`Timestamp::max`] if that is later still (an
    /// expiry that far away never comes anyway).
    pub fn saturating_add(self, duration: Duration) -> Self {
        chrono::TimeDelta::from_std(duration)
            .ok()
            .and_then(|delta| self.0.checked_add_signed(delta))
            .map_or(Self::max(), Self::from_datetime)
            .min(Self::max())
    }

    /// The instant `duration` earlier, or the earliest one that can be shown.
    pub fn saturating_sub(self, duration: Duration) -> Self {
        chrono::TimeDelta::from_std(duration)
            .ok()
            .and_then(|delta| self.0.checked_sub_signed(delta))
            .map_or(Self(DateTime::<Utc>::MIN_UTC), Self::from_datetime)
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn since(self, earlier: Self) -> Duration {
        (self.0 - earlier.0).to_std().unwrap_or_default()
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(instant: DateTime<Utc>) -> Self {
        Self::from_datetime(instant)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every listed message shows a timestamp, and chrono's general formatter was
        // a seventh of the time spent listing conversations: write the one fixed
        // layout directly.
        let year = self.0.year();
        if !(0..=9999).contains(&year) {
            return f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let fields = [
            (0, 4, year.unsigned_abs()),
            (5, 2, self.0.month()),
            (8, 2, self.0.day()),
            (11, 2, self.0.hour()),
            (14, 2, self.0.minute()),
            (17, 2, self.0.second()),
            (20, 3, self.0.timestamp_subsec_millis()),
        ];
        for (start, width, mut value) in fields {
            for digit in text[start..start + width].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The [`Clock`] of the operating system.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }
}

/// A [`Clock`] that stands still until told to move: tests about time (expiry,
/// renewal, checkpoints) move it instead of sleeping. As a [`Timer`], its sleeps end
/// when it is moved past their deadline. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::Mutex<ManualTime>>);

#[derive(Debug)]
struct ManualTime {
    now: Timestamp,
    sleepers: Vec<std::task::Waker>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(ManualTime {
            now: start,
            sleepers: Vec::new(),
        })))
    }

    /// Moves the time `duration` forward, waking the sleeps that are then over.
    pub fn advance(&self, duration: Duration) {
        let sleepers = {
            let mut time = self.lock();
            time.now = time.now.saturating_add(duration);
            std::mem::take(&mut time.sleepers)
        };
        // Every sleeper checks its own deadline again; the others wait anew.
        sleepers.into_iter().for_each(std::task::Waker::wake);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualTime> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.lock().now
    }
}

impl Timer for ManualClock {
    fn sleep(&self, duration: Duration) -> Task {
        let clock = self.clone();
        let deadline = self.now().saturating_add(duration);
        Box::pin(std::future::poll_fn(move |cx| {
            let mut time = clock.lock();
            if time.now >= deadline {
                std::task::Poll::Ready(())
            } else {
                // A sleep polled again while waiting is counted once.
                if !time.sleepers.iter().any(|s| s.will_wake(cx.waker())) {
                    time.sleepers.push(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("bad test timestamp {rfc3339}: {e}"))
    }

    #[test]
    fn truncates_to_milliseconds_and_displays_rfc3339_utc() {
        let t = Timestamp::from_datetime(at("2026-11-25T06:07:14.123987654Z"));
        assert_eq!(t.to_string(), "2026-11-25T06:07:14.123Z");
        assert_eq!(t, Timestamp::from_unix_millis(t.unix_millis()).unwrap());
    }

    #[test]
    fn whole_seconds_still_show_milliseconds() {
        let t = Timestamp::from_datetime(at("2026-11-25T06:07:14+02:00"));
        assert_eq!(t.to_string(), "2026-11-25T04:07:14.000Z");
    }

    #[test]
    fn displays_every_field_zero_padded() {
        let t = Timestamp::from_datetime(at("0042-01-02T03:04:05.006Z"));
        assert_eq!(t.to_string(), "0042-01-02T03:04:05.006Z");
        let epoch = Timestamp::from_unix_millis(0).unwrap();
        assert_eq!(epoch.to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn years_beyond_four_digits_still_display() {
        let t = Timestamp::from_unix_millis(-62_198_755_200_000).unwrap();
        assert_eq!(t.to_string(), "-0001-01-01T00:00:00.000Z");
    }

    #[test]
    fn saturating_add_adds_and_saturates() {
        let t = Timestamp::from_datetime(at("2026-11-25T06:07:14.500Z"));
        assert_eq!(
            t.saturating_add(Duration::from_secs(1800)).to_string(),
            "2026-11-25T06:37:14.500Z"
        );
        assert_eq!(t.saturating_add(Duration::MAX), Timestamp::max());
        assert_eq!(Timestamp::max().to_string(), "9999-12-31T23:59:59.999Z");
    }
}
