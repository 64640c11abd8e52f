DROP TABLE account_tokens;

-- Back to sessions found by their key, with none of them: the digests stored since
-- cannot be turned back into keys.
DROP TABLE sessions;
CREATE TABLE sessions (
    session_key TEXT PRIMARY KEY NOT NULL,
    user_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    state       TEXT      NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- The index first: SQLite refuses to drop a column an index uses.
DROP INDEX users_email_normalized;
ALTER TABLE users DROP COLUMN email_verified;
ALTER TABLE users DROP COLUMN email_normalized;
ALTER TABLE users DROP COLUMN email;
ALTER TABLE users DROP COLUMN display_name;
