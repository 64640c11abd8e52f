DROP TRIGGER users_update_raises_revision;
DROP TRIGGER users_insert_makes_revision;
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
UPDATE users SET revision = COALESCE(
    (SELECT SUM(changes) FROM revisions WHERE revisions.user_id = users.id), 0);

DROP TRIGGER messages_delete_raises_revision;
DROP TRIGGER messages_update_raises_revision;
DROP TRIGGER messages_insert_raises_revision;
DROP TRIGGER conversations_delete_raises_revision;
DROP TRIGGER conversations_update_raises_revision;
DROP TRIGGER conversations_insert_raises_revision;
DROP TABLE revisions;

CREATE TRIGGER conversations_insert_raises_revision AFTER INSERT ON conversations
BEGIN
    UPDATE users SET revision = revision + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER conversations_update_raises_revision AFTER UPDATE ON conversations
BEGIN
    UPDATE users SET revision = revision + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER conversations_delete_raises_revision AFTER DELETE ON conversations
BEGIN
    UPDATE users SET revision = revision + 1 WHERE id = OLD.user_id;
END;

CREATE TRIGGER messages_insert_raises_revision AFTER INSERT ON messages
BEGIN
    UPDATE users SET revision = revision + 1
    WHERE id = (SELECT user_id FROM conversations WHERE id = NEW.conversation_id);
END;

CREATE TRIGGER messages_update_raises_revision AFTER UPDATE ON messages
BEGIN
    UPDATE users SET revision = revision + 1
    WHERE id = (SELECT user_id FROM conversations WHERE id = NEW.conversation_id);
END;

CREATE TRIGGER messages_delete_raises_revision AFTER DELETE ON messages
BEGIN
    UPDATE users SET revision = revision + 1
    WHERE id = (SELECT user_id FROM conversations WHERE id = OLD.conversation_id);
END;
