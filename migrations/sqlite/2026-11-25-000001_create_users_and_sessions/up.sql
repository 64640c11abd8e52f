-- AUTOINCREMENT: ids of deleted rows are never handed out again.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT      NOT NULL,
    password_hash TEXT      NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
-- Usernames are unique regardless of letter case (they are ASCII, which lower() folds).
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE sessions (
    session_key TEXT PRIMARY KEY NOT NULL,
    user_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    state       TEXT      NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);
