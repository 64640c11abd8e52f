//! Pages: a bounded slice of a long list, and where the next slice starts.
//!
//! Pages are keyed by position (a cursor naming the last item seen), not by offset, so
//! a page deep in a long history costs what the first page costs, and items added
//! while a client pages through are neither skipped nor shown twice.

use std::fmt;
use std::str::FromStr;

use crate::validation::{Field, Rule, ValidationError};
use crate::{Conversation, ConversationId, MessageId, Timestamp};

/// How many items one page holds: 1 to [`PageSize::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageSize(u8);

impl PageSize {
    /// Most items of a page.
    pub const MAX: u8 = 100;
    /// Items of a page when the client does not say.
    pub const DEFAULT: Self = Self(20);

    /// Accepts `raw` if it is a whole number from 1 to [`PageSize::MAX`].
    ///
    /// ```
    /// use chatbot_domain::PageSize;
    /// assert_eq!(PageSize::parse("50").unwrap().get(), 50);
    /// assert_eq!(
    ///     PageSize::parse("0").unwrap_err().to_string(),
    ///     "limit must be a whole number from 1 to 100"
    /// );
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        raw.parse::<u8>()
            .ok()
            .filter(|size| (1..=Self::MAX).contains(size))
            .map(Self)
            .ok_or(ValidationError::new(
                Field::Limit,
                Rule::OutOfRange {
                    min: 1,
                    max: Self::MAX.into(),
                },
            ))
    }

    /// The number of items.
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where a page of conversations continues: after the conversation that was last active
/// at `updated_at` and has `id`, in the most-recently-active-first order.
///
/// Clients see it as an opaque string (its [`Display`](fmt::Display) form) and send it
/// back unchanged as `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationCursor {
    /// When the last conversation seen was last active.
    pub updated_at: Timestamp,
    /// Its id, which orders conversations active in the same millisecond.
    pub id: ConversationId,
}

impl ConversationCursor {
    /// Most digits of the milliseconds of a cursor's text form (up to the year 33658).
    pub const MAX_MILLIS_DIGITS: usize = 15;
    /// Most digits of the id of a cursor's text form (every 18-digit id fits an `i64`).
    pub const MAX_ID_DIGITS: usize = 18;

    /// The position just after `conversation`.
    pub fn after(conversation: &Conversation) -> Self {
        Self {
            updated_at: conversation.updated_at,
            id: conversation.id,
        }
    }
}

impl fmt::Display for ConversationCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.updated_at.unix_millis(), self.id)
    }
}

impl FromStr for ConversationCursor {
    type Err = ValidationError;

    /// Reads a cursor from its [`Display`](fmt::Display) form, and only that:
    /// milliseconds of 1 to 15 digits, `_`, an id of 1 to 18 digits, neither with a
    /// sign or a leading zero (the pattern `^(0|[1-9][0-9]{0,14})_[1-9][0-9]{0,17}$`).
    /// Every cursor of an instant from 1970 to [`Timestamp::max`] reads back.
    ///
    /// ```
    /// use chatbot_domain::ConversationCursor;
    /// let cursor: ConversationCursor = "1795586834123_42".parse().unwrap();
    /// assert_eq!(cursor.id.get(), 42);
    /// assert_eq!(cursor.to_string(), "1795586834123_42");
    /// for malformed in ["42", "+1795586834123_42", "1795586834123_042", "-5_1", "1_0"] {
    ///     assert!(malformed.parse::<ConversationCursor>().is_err(), "{malformed}");
    /// }
    /// ```
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let malformed = ValidationError::new(
            Field::Before,
            Rule::Malformed {
                expected: "the `next` value of a previous page",
            },
        );
        // Plain decimal digits without a leading zero, as `Display` writes them.
        let canonical = |digits: &str, max: usize| {
            (1..=max).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'))
        };
        let (millis, id) = raw.split_once('_').ok_or(malformed)?;
        if !canonical(millis, Self::MAX_MILLIS_DIGITS) || !canonical(id, Self::MAX_ID_DIGITS) {
            return Err(malformed);
        }
        let updated_at = millis
            .parse()
            .ok()
            .and_then(Timestamp::from_unix_millis)
            .ok_or(malformed)?;
        let id = id.parse().ok().filter(|id| *id > 0).ok_or(malformed)?;
        Ok(Self {
            updated_at,
            id: ConversationId::new(id),
        })
    }
}

/// Where a page of messages continues: before this message, in the oldest-first order,
/// so that pages walk back through a conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageCursor(pub MessageId);

impl fmt::Display for MessageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageCursor {
    type Err = ValidationError;

    /// Reads a message id.
    ///
    /// ```
    /// use chatbot_domain::MessageCursor;
    /// assert_eq!("7".parse::<MessageCursor>().unwrap().0.get(), 7);
    /// assert!("-7".parse::<MessageCursor>().is_err());
    /// ```
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        raw.parse()
            .ok()
            .filter(|id| *id > 0)
            .map(|id| Self(MessageId::new(id)))
            .ok_or(ValidationError::new(
                Field::Before,
                Rule::Malformed {
                    expected: "a message id",
                },
            ))
    }
}

/// Which page of a list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// At most this many items.
    pub size: PageSize,
    /// Where the page starts; `None` for the first page.
    pub before: Option<C>,
}

impl<C> Default for PageRequest<C> {
    /// The first page, of the default size.
    fn default() -> Self {
        Self {
            size: PageSize::DEFAULT,
            before: None,
        }
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this is the last.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// The page out of `items`, which storage read through [`Window::probing`] in the
    /// list's order: an item beyond `size` means another page follows, starting after
    /// the last item kept.
    pub(crate) fn from_probe(
        mut items: Vec<T>,
        size: PageSize,
        cursor_of: impl Fn(&T) -> C,
    ) -> Self {
        let next = if items.len() > size.get() {
            items.truncate(size.get());
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next }
    }
}

/// A slice of a list as storage reads it: at most `limit` items from `before` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window<C> {
    /// Where the slice starts; `None` for the start of the list.
    pub before: Option<C>,
    /// At most this many items; `None` for all of them.
    pub limit: Option<usize>,
}

impl<C> Window<C> {
    /// The whole list.
    pub const ALL: Self = Self {
        before: None,
        limit: None,
    };

    /// The window that holds `page` and one item more, which tells whether another
    /// page follows.
    pub fn probing(page: PageRequest<C>) -> Self {
        Self {
            before: page.before,
            limit: Some(page.size.get() + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_whole_numbers_from_one_to_a_hundred() {
        assert_eq!(PageSize::parse("1").unwrap().get(), 1);
        assert_eq!(PageSize::parse("100").unwrap().get(), 100);
        for bad in [
            "0",
            "101",
            "-1",
            "1.5",
            "",
            " 5",
            "ten",
            "99999999999999999999",
        ] {
            let error = PageSize::parse(bad).unwrap_err();
            assert_eq!(error.field, Field::Limit, "{bad:?}");
        }
        assert_eq!(PageSize::default().get(), 20);
    }

    #[test]
    fn conversation_cursors_round_trip_and_refuse_junk() {
        let cursor = ConversationCursor {
            updated_at: Timestamp::from_unix_millis(5).unwrap(),
            id: ConversationId::new(9),
        };
        assert_eq!(cursor.to_string().parse::<ConversationCursor>(), Ok(cursor));
        let latest = ConversationCursor {
            updated_at: Timestamp::max(),
            id: ConversationId::new(999_999_999_999_999_999),
        };
        assert_eq!(latest.to_string().parse::<ConversationCursor>(), Ok(latest));
        for bad in [
            "",
            "_",
            "1_",
            "_1",
            "1_0",
            "1_-2",
            "x_1",
            "1_1_1",
            "1.5_1",
            "-5_9",
            "+5_9",
            "05_9",
            "5_09",
            "5_+9",
            " 5_9",
            "5_9 ",
            "1000000000000000_1",
            "1_1000000000000000000",
        ] {
            let error = bad.parse::<ConversationCursor>().unwrap_err();
            assert_eq!(error.field, Field::Before, "{bad:?}");
        }
        let too_late = format!("{}_1", i64::MAX);
        assert!(too_late.parse::<ConversationCursor>().is_err());
    }

    #[test]
    fn a_probe_beyond_the_size_leaves_a_cursor_at_the_last_item_kept() {
        let size = PageSize::parse("2").unwrap();
        let full = Page::from_probe(vec![5, 4, 3], size, |n| n * 10);
        assert_eq!(
            full,
            Page {
                items: vec![5, 4],
                next: Some(40)
            }
        );
        let last = Page::from_probe(vec![5, 4], size, |n| n * 10);
        assert_eq!(
            last,
            Page {
                items: vec![5, 4],
                next: None
            }
        );
        let empty = Page::from_probe(Vec::<i32>::new(), size, |n| n * 10);
        assert_eq!(
            empty,
            Page {
                items: vec![],
                next: None
            }
        );
    }

    #[test]
    fn message_cursors_are_positive_ids() {
        assert_eq!(
            "12".parse::<MessageCursor>(),
            Ok(MessageCursor(MessageId::new(12)))
        );
        for bad in ["0", "-1", "", "abc", "9223372036854775808"] {
            assert!(bad.parse::<MessageCursor>().is_err(), "{bad:?}");
        }
    }
}
