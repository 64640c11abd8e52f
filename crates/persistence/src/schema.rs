//! The tables, as diesel sees them; the same on both databases.

diesel::table! {
    users (id) {
        id -> BigInt,
        /// As typed.
        username -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        display_name -> Text,
        /// As typed.
        email -> Nullable<Text>,
        /// `Email::normalized` of `email`, unique: written by the application, never
        /// by SQL, so no database locale decides which addresses are the same.
        email_normalized -> Nullable<Text>,
        email_verified -> Bool,
        /// `Username::normalized` of `username`, unique: written by the application,
        /// never by SQL, whose `lower()` follows the database's locale.
        username_normalized -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        /// The SHA-256 of the session's key, unique; the key is never stored.
        key_digest -> Text,
        user_id -> Nullable<BigInt>,
        state -> Text,
        user_agent -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Tokens mailed to users, one per user and purpose.
    account_tokens (digest) {
        /// The SHA-256 of the token; the token is never stored.
        digest -> Text,
        user_id -> BigInt,
        /// `TokenPurpose::as_str`.
        purpose -> Text,
        /// The address the token was mailed to.
        email -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        conversation_id -> BigInt,
        sender -> Text,
        text -> Text,
        created_at -> Timestamp,
        status -> Text,
        /// While the reply streams: where each delta of its text ends, in bytes,
        /// comma-separated decimal; NULL otherwise.
        reply_ends -> Nullable<Text>,
        /// While the reply streams: when its writer was last heard of; NULL otherwise.
        heard_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// A user's revision is the sum of their counters here: one per slot, a slot per
    /// database session on PostgreSQL (so that writers from several connections raise
    /// counters of their own), slot 0 alone on SQLite. Raised by triggers only.
    revisions (user_id, slot) {
        user_id -> BigInt,
        slot -> SmallInt,
        changes -> BigInt,
    }
}

diesel::joinable!(conversations -> users (user_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(account_tokens -> users (user_id));
diesel::joinable!(revisions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    account_tokens,
    conversations,
    messages,
    revisions
);
