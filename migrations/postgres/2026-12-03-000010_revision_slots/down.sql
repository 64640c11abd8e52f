DROP TRIGGER users_raise_revision ON users;
DROP FUNCTION raise_revision_of_user();

ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
UPDATE users SET revision = totals.changes
FROM (SELECT user_id, SUM(changes) AS changes FROM revisions GROUP BY user_id) AS totals
WHERE users.id = totals.user_id;

DROP TRIGGER messages_raise_revision ON messages;
CREATE TRIGGER messages_raise_revision
    AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_message_owner();
DROP TRIGGER conversations_raise_revision ON conversations;
CREATE TRIGGER conversations_raise_revision
    AFTER INSERT OR UPDATE OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_conversation_owner();

CREATE OR REPLACE FUNCTION raise_revision_of_conversation_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET revision = revision + 1
    WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION raise_revision_of_message_owner() RETURNS trigger
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

DROP FUNCTION raise_revision(BIGINT);
DROP TABLE revisions;
