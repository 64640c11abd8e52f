-- The revision moves from a counter on the user's row to the sum of the counters in
-- `revisions`, as on PostgreSQL (where writers from several connections each raise a
-- counter of their own). SQLite has one writer at a time: it keeps one counter per user,
-- in slot 0. Every committed change adds one; counters never fall.
CREATE TABLE revisions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slot INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    PRIMARY KEY (user_id, slot)
);

-- The sum starts where the counter was, so revisions keep rising across the upgrade.
INSERT INTO revisions (user_id, slot, changes)
SELECT id, 0, revision FROM users WHERE revision > 0;

DROP TRIGGER conversations_insert_raises_revision;
DROP TRIGGER conversations_update_raises_revision;
DROP TRIGGER conversations_delete_raises_revision;
DROP TRIGGER messages_insert_raises_revision;
DROP TRIGGER messages_update_raises_revision;
DROP TRIGGER messages_delete_raises_revision;

-- An account deleted in the same statement has nothing left to version: hence the
-- EXISTS. Messages deleted with their conversation find it gone, and leave the raise
-- to the conversation's own trigger.
CREATE TRIGGER conversations_insert_raises_revision AFTER INSERT ON conversations
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT NEW.user_id, 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id)
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER conversations_update_raises_revision AFTER UPDATE ON conversations
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT NEW.user_id, 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id)
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER conversations_delete_raises_revision AFTER DELETE ON conversations
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT OLD.user_id, 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id)
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER messages_insert_raises_revision AFTER INSERT ON messages
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT (SELECT user_id FROM conversations WHERE id = NEW.conversation_id), 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = (SELECT user_id FROM conversations WHERE id = NEW.conversation_id))
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER messages_update_raises_revision AFTER UPDATE ON messages
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT (SELECT user_id FROM conversations WHERE id = NEW.conversation_id), 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = (SELECT user_id FROM conversations WHERE id = NEW.conversation_id))
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER messages_delete_raises_revision AFTER DELETE ON messages
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT (SELECT user_id FROM conversations WHERE id = OLD.conversation_id), 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = (SELECT user_id FROM conversations WHERE id = OLD.conversation_id))
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

-- Profile, address and password changes are the user's writes too: the revision
-- versions all of them.
CREATE TRIGGER users_update_raises_revision AFTER UPDATE ON users
BEGIN
    INSERT INTO revisions (user_id, slot, changes)
    SELECT NEW.id, 0, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = NEW.id)
    ON CONFLICT (user_id, slot) DO UPDATE SET changes = changes + 1;
END;

ALTER TABLE users DROP COLUMN revision;
