//! Arbitrary input to the validated types yields a value that keeps the rules, or a
//! validation error naming the field; never a panic. Timestamps display as chrono
//! formats them.

use chatbot_domain::{ConversationName, Field, MessageText, Password, Timestamp, Username};
use chrono::SecondsFormat;
use proptest::prelude::*;

/// Strings mixing the characters validation cares about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9_.-]{0,40}",
        "[ \t\n\r\u{0}a-z\u{e9}\u{1F600}\u{202E}]{0,120}",
        proptest::collection::vec(any::<char>(), 0..20_000).prop_map(|c| c.into_iter().collect()),
    ]
}

proptest! {
    #[test]
    fn usernames(raw in text()) {
        match Username::parse(&raw) {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), raw.as_str());
                prop_assert!((3..=32).contains(&raw.chars().count()));
                prop_assert!(raw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
            }
            Err(error) => {
                prop_assert_eq!(error.field, Field::Username);
                prop_assert!(error.to_string().starts_with("username "));
            }
        }
    }

    #[test]
    fn passwords(raw in text()) {
        match Password::parse(&raw) {
            Ok(password) => {
                prop_assert_eq!(password.expose(), raw.as_str());
                prop_assert!(raw.len() <= 72 && raw.chars().count() >= 8);
            }
            Err(error) => prop_assert_eq!(error.field, Field::Password),
        }
    }

    #[test]
    fn conversation_names(raw in text()) {
        match ConversationName::parse(&raw) {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), raw.trim());
                prop_assert!((1..=100).contains(&name.as_str().chars().count()));
                prop_assert!(!name.as_str().chars().any(char::is_control));
            }
            Err(error) => prop_assert_eq!(error.field, Field::Name),
        }
    }

    #[test]
    fn message_texts(raw in text(), limit in prop_oneof![Just(usize::MAX), 1usize..20_000]) {
        match MessageText::parse_with_limit(&raw, limit) {
            Ok(message) => {
                prop_assert_eq!(message.as_str(), raw.trim());
                let count = message.as_str().chars().count();
                prop_assert!(count >= 1 && count <= limit);
                prop_assert!(!message.as_str().contains('\0'));
            }
            Err(error) => prop_assert_eq!(error.field, Field::Text),
        }
    }

    #[test]
    fn timestamps_display_as_rfc3339(millis in -62_167_219_200_000i64..=253_402_300_799_999) {
        let timestamp = Timestamp::from_unix_millis(millis).unwrap();
        let expected = timestamp.as_datetime().to_rfc3339_opts(SecondsFormat::Millis, true);
        prop_assert_eq!(timestamp.to_string(), expected);
    }
}
