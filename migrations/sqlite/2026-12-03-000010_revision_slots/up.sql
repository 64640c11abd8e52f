-- The revision moves from a counter on the user's row to the sum of the counters in
-- `revisions`, as on PostgreSQL (where writers from several connections each raise a
-- counter of their own). SQLite has one writer at a time: it keeps one counter per user,
-- in slot 0, made with the user, so raising it is one update by its key. Every committed
-- change adds one; counters never fall.
CREATE TABLE revisions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slot INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    PRIMARY KEY (user_id, slot)
) WITHOUT ROWID;

-- The sum starts where the counter was, so revisions keep rising across the upgrade.
INSERT INTO revisions (user_id, slot, changes) SELECT id, 0, revision FROM users;

CREATE TRIGGER users_insert_makes_revision AFTER INSERT ON users
BEGIN
    INSERT INTO revisions (user_id, slot, changes) VALUES (NEW.id, 0, 0);
END;

DROP TRIGGER conversations_insert_raises_revision;
DROP TRIGGER conversations_update_raises_revision;
DROP TRIGGER conversations_delete_raises_revision;
DROP TRIGGER messages_insert_raises_revision;
DROP TRIGGER messages_update_raises_revision;
DROP TRIGGER messages_delete_raises_revision;

-- Messages deleted with their conversation find it gone, and leave the raise to the
-- conversation's own trigger; a deleted account's counter is gone with it.
CREATE TRIGGER conversations_insert_raises_revision AFTER INSERT ON conversations
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = NEW.user_id AND slot = 0;
END;

CREATE TRIGGER conversations_update_raises_revision AFTER UPDATE ON conversations
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = NEW.user_id AND slot = 0;
END;

CREATE TRIGGER conversations_delete_raises_revision AFTER DELETE ON conversations
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = OLD.user_id AND slot = 0;
END;

CREATE TRIGGER messages_insert_raises_revision AFTER INSERT ON messages
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = (SELECT user_id FROM conversations WHERE id = NEW.conversation_id) AND slot = 0;
END;

CREATE TRIGGER messages_update_raises_revision AFTER UPDATE ON messages
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = (SELECT user_id FROM conversations WHERE id = NEW.conversation_id) AND slot = 0;
END;

CREATE TRIGGER messages_delete_raises_revision AFTER DELETE ON messages
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = (SELECT user_id FROM conversations WHERE id = OLD.conversation_id) AND slot = 0;
END;

-- Profile, address and password changes are the user's writes too: the revision
-- versions all of them.
CREATE TRIGGER users_update_raises_revision AFTER UPDATE ON users
BEGIN
    UPDATE revisions SET changes = changes + 1 WHERE user_id = NEW.id AND slot = 0;
END;

ALTER TABLE users DROP COLUMN revision;
