-- Every change to a user's conversations or messages raises the user's revision, in
-- the same transaction, whichever code makes it: the rule lives here, once, rather
-- than in each write of the application by habit. The API reuses its rendering of a
-- user's conversation list while the revision stays, so a write that did not raise it
-- would serve a stale list.
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

-- A message's owner is its conversation's. Messages deleted with their conversation
-- find it gone, and leave the raise to the conversation's own trigger.
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
