//! The tables, as diesel sees them; the same on both databases.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        revision -> BigInt,
    }
}

diesel::table! {
    sessions (session_key) {
        session_key -> Text,
        user_id -> Nullable<BigInt>,
        state -> Text,
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

diesel::joinable!(conversations -> users (user_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions, conversations, messages);

diesel::define_sql_function! {
    /// SQL `lower()`: ASCII case folding on SQLite, full on PostgreSQL; usernames are
    /// ASCII, so both agree.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}
