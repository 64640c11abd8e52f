-- Usernames are unique whatever their letter case. The unique key was lower(username),
-- and PostgreSQL's lower() follows the database's locale: under an ICU Turkish locale
-- it maps 'I' to 'ı', so "alice" and "ALICE" became two accounts and "Iris" could not
-- log in. username_normalized is written by the application (Username::normalized,
-- ASCII lower case, like email_normalized), so no locale decides who is who. Usernames
-- are ASCII; lower() under the "C" collation folds exactly ASCII letters.
ALTER TABLE users ADD COLUMN username_normalized TEXT NULL;
UPDATE users SET username_normalized = lower(username COLLATE "C");
ALTER TABLE users ALTER COLUMN username_normalized SET NOT NULL;
DROP INDEX users_username_lower;
CREATE UNIQUE INDEX users_username_normalized ON users (username_normalized);
