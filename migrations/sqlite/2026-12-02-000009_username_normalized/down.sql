DROP INDEX users_username_normalized;
ALTER TABLE users DROP COLUMN username_normalized;
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
