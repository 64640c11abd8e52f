-- Usernames are unique whatever their letter case. username_normalized is written by
-- the application (Username::normalized, ASCII lower case, like email_normalized), as
-- on PostgreSQL, where lower() follows the database's locale. SQLite's lower() folds
-- ASCII letters only, which is what the existing names need.
ALTER TABLE users ADD COLUMN username_normalized TEXT NOT NULL DEFAULT '';
UPDATE users SET username_normalized = lower(username);
DROP INDEX users_username_lower;
CREATE UNIQUE INDEX users_username_normalized ON users (username_normalized);
