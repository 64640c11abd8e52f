CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Listing a user's conversations, most recently active first.
CREATE INDEX conversations_user_activity ON conversations (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER   NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender          TEXT      NOT NULL CHECK (sender IN ('user', 'bot')),
    text            TEXT      NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
-- A conversation's messages, oldest first; also serves the cascade from conversations.
CREATE INDEX messages_conversation_order ON messages (conversation_id, created_at, id);
