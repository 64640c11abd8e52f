-- Every change to a user's conversations or messages raises the user's revision, in
-- the same transaction, whichever code makes it: the rule lives here, once, rather
-- than in each write of the application by habit. The API reuses its rendering of a
-- user's conversation list while the revision stays, so a write that did not raise it
-- would serve a stale list.
CREATE FUNCTION raise_revision_of_conversation_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET revision = revision + 1
    WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversations_raise_revision
    AFTER INSERT OR UPDATE OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_conversation_owner();

-- A message's owner is its conversation's. Messages deleted with their conversation
-- find it gone, and leave the raise to the conversation's own trigger.
CREATE FUNCTION raise_revision_of_message_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET revision = revision + 1
    WHERE id = (
        SELECT user_id FROM conversations
        WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.conversation_id ELSE NEW.conversation_id END
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_raise_revision
    AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_message_owner();
