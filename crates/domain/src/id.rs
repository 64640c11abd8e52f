//! Identifiers of the stored entities.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a value the storage assigned; ids are never made up by callers.
            pub const fn new(value: i64) -> Self {
                Self(value)
            }

            /// The raw value, as stored and as shown in the API.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies a [`User`](crate::User).
    UserId
);
id_type!(
    /// Identifies a [`Conversation`](crate::Conversation).
    ConversationId
);
id_type!(
    /// Identifies a [`Message`](crate::Message).
    MessageId
);
id_type!(
    /// Identifies a session to its user (to list and end it), without being its key:
    /// knowing it logs no one in.
    SessionId
);
