-- Usernames are unique whatever their letter case. The unique key was lower(username),
-- and PostgreSQL's lower() follows the database's locale: under an ICU Turkish locale
-- it maps 'I' to 'ı', so "alice" and "ALICE" became two accounts and "Iris" could not
-- log in. username_normalized is written by the application (Username::normalized,
-- ASCII lower case, like email_normalized), so no locale decides who is who. Usernames
-- are ASCII; lower() under the "C" collation folds exactly ASCII letters.
ALTER TABLE users ADD COLUMN username_normalized TEXT NULL;
UPDATE users SET username_normalized = lower(username COLLATE "C");
-- A database whose locale let two accounts share a name in different letter cases
-- cannot take the unique index: say which, rather than fail on the index.
DO $$
DECLARE
    clashes TEXT;
BEGIN
    SELECT string_agg(names, '; ') INTO clashes FROM (
        SELECT string_agg(username, ', ' ORDER BY id) AS names
        FROM users GROUP BY username_normalized HAVING count(*) > 1
    ) AS clashing;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'these accounts share a username in different letter cases: %', clashes
            USING HINT = 'rename all but one of each (UPDATE users SET username = ... WHERE id = ...), then start again';
    END IF;
END $$;
ALTER TABLE users ALTER COLUMN username_normalized SET NOT NULL;
DROP INDEX users_username_lower;
CREATE UNIQUE INDEX users_username_normalized ON users (username_normalized);
