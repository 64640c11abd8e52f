//! Reading `TIMESTAMP` columns back into the domain's [`Timestamp`].

use chatbot_domain::Timestamp;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types;
use diesel::sqlite::{Sqlite, SqliteValue};

use crate::connection::{MultiBackend, MultiRawValue};

/// A timestamp as a column holds it (UTC without a zone).
///
/// Listing conversations decodes one per message. On SQLite timestamps are text, and
/// diesel's decoder tries chrono's format parsers one after another, which took a
/// tenth of the listing's time; the one layout this application writes is decoded
/// here directly, anything else still goes through diesel.
#[derive(Debug, Clone, Copy, FromSqlRow)]
pub(crate) struct StoredTime(pub(crate) Timestamp);

impl StoredTime {
    fn from_naive(stored: NaiveDateTime) -> Self {
        Self(Timestamp::from_datetime(stored.and_utc()))
    }
}

impl FromSql<sql_types::Timestamp, MultiBackend> for StoredTime {
    fn from_sql(value: MultiRawValue<'_>) -> deserialize::Result<Self> {
        value.from_sql::<Self, sql_types::Timestamp>()
    }
}

impl FromSql<sql_types::Timestamp, Pg> for StoredTime {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<sql_types::Timestamp, Pg>>::from_sql(value).map(Self::from_naive)
    }
}

impl FromSql<sql_types::Timestamp, Sqlite> for StoredTime {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        if let Some(stored) = parse_written_layout(value.read_text()) {
            return Ok(Self::from_naive(stored));
        }
        <NaiveDateTime as FromSql<sql_types::Timestamp, Sqlite>>::from_sql(value)
            .map(Self::from_naive)
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional `.mmm`: what diesel writes for a timestamp
/// of whole milliseconds.
fn parse_written_layout(text: &str) -> Option<NaiveDateTime> {
    let bytes = text.as_bytes();
    let millis = match bytes.len() {
        19 => 0,
        23 if bytes[19] == b'.' => number(&bytes[20..23])?,
        _ => return None,
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, separator)| bytes[at] != separator)
    {
        return None;
    }
    let year = i32::try_from(number(&bytes[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&bytes[5..7])?, number(&bytes[8..10])?)?.and_hms_milli_opt(
        number(&bytes[11..13])?,
        number(&bytes[14..16])?,
        number(&bytes[17..19])?,
        millis,
    )
}

/// The decimal number `digits` spell, if they are all digits.
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |value: u32, digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u32::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_layout_diesel_writes() {
        for written in [
            "2026-11-25 06:07:14.123",
            "2026-11-25 06:07:14",
            "0001-01-01 00:00:00.001",
            "9999-12-31 23:59:59.999",
        ] {
            let expected = NaiveDateTime::parse_from_str(written, "%F %T%.f").unwrap();
            assert_eq!(parse_written_layout(written), Some(expected), "{written}");
            assert_eq!(
                expected.format("%F %T%.f").to_string(),
                written,
                "diesel's layout"
            );
        }
    }

    #[test]
    fn leaves_anything_else_to_diesel() {
        for other in [
            "2026-11-25T06:07:14.123",
            "2026-11-25 06:07:14.123456",
            "2026-11-25 06:07:14.12",
            "2026-13-25 06:07:14",
            "2026-02-30 06:07:14",
            "2026-11-25 24:00:00",
            "2026-11-25 06:07:1x",
            "2460000.5",
            "",
        ] {
            assert_eq!(parse_written_layout(other), None, "{other}");
        }
    }
}
