-- A profile: the name a user is shown by (their username until they choose one) and
-- an address that mail reaches them at.
ALTER TABLE users ADD COLUMN display_name TEXT NULL;
UPDATE users SET display_name = username;
ALTER TABLE users ALTER COLUMN display_name SET NOT NULL;
-- email: as typed. email_normalized: its lower-case form, written by the application
-- (Email::normalized), not by SQL lower(), so that what counts as the same address
-- never depends on the database or its locale. One account per address, letter case
-- aside; many accounts have none (NULLs are distinct).
ALTER TABLE users ADD COLUMN email TEXT NULL;
ALTER TABLE users ADD COLUMN email_normalized TEXT NULL;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false;
CREATE UNIQUE INDEX users_email_normalized ON users (email_normalized);

-- A session is found by the SHA-256 of its key, never by the key, so a copy of the
-- database logs no one in; the id is the handle its user lists and ends it by. The
-- sessions stored before cannot be kept: only a digest may be stored, and SQLite has
-- no SHA-256 to compute it, so both databases end them alike. An idle session lives
-- 30 minutes anyway; their users log in again.
DROP TABLE sessions;
CREATE TABLE sessions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_digest   TEXT      NOT NULL UNIQUE,
    user_id      BIGINT    NULL REFERENCES users (id) ON DELETE CASCADE,
    state        TEXT      NOT NULL,
    user_agent   TEXT      NULL,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
-- The purge of expired sessions; a user's sessions, listed, ended, and cascaded.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- The tokens mailed to users (to verify an address, to reset a password), stored as
-- the SHA-256 of the token, taken back once. purpose: TokenPurpose::as_str. email:
-- the address it was mailed to, which it proves only while the account still has it.
CREATE TABLE account_tokens (
    digest     TEXT      PRIMARY KEY,
    user_id    BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT      NOT NULL,
    email      TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
-- One token per user and purpose: issuing one deletes the older, found by this index,
-- as is the cascade from users.
CREATE UNIQUE INDEX account_tokens_user_purpose ON account_tokens (user_id, purpose);
-- The purge of expired tokens.
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);
