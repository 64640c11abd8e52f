-- A user's revision was one counter on their row, raised by every change in the
-- change's transaction: writes by one user took turns on that row until each commit
-- was flushed. It is now the sum of counters in `revisions`, one per database session
-- slot: a transaction raises its own session's counter, so writes by one user from
-- different connections take no lock from each other. Every committed change still
-- adds one to the sum, and counters never fall, so the sum read in one statement
-- stays the same exactly while nothing of the user's changes.
CREATE TABLE revisions (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The backend's process id modulo 64: one pool's connections, usually opened one
    -- after another, rarely share a slot, and when they do they only take turns.
    slot SMALLINT NOT NULL,
    changes BIGINT NOT NULL,
    PRIMARY KEY (user_id, slot)
);

-- The sum starts where the counter was, so revisions keep rising across the upgrade.
INSERT INTO revisions (user_id, slot, changes)
SELECT id, 0, revision FROM users WHERE revision > 0;

-- Once per owner and transaction: the sum only needs to rise, and one transaction's
-- many changed rows (a message sent: its conversation, then two messages) would
-- otherwise each write the counter. PL/pgSQL keeps the statement's plan for the
-- session; a SQL function would be planned again at every call.
CREATE FUNCTION raise_revision(owner BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('chatbot.revision_raised_for', true) IS DISTINCT FROM owner::text THEN
        -- An account deleted in this transaction has nothing left to version.
        INSERT INTO revisions (user_id, slot, changes)
        SELECT owner, pg_backend_pid() % 64, 1 WHERE EXISTS (SELECT 1 FROM users WHERE id = owner)
        ON CONFLICT (user_id, slot) DO UPDATE SET changes = revisions.changes + 1;
        PERFORM set_config('chatbot.revision_raised_for', owner::text, true);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION raise_revision_of_conversation_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM raise_revision(CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION raise_revision_of_message_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner BIGINT;
BEGIN
    SELECT user_id INTO owner FROM conversations
    WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.conversation_id ELSE NEW.conversation_id END;
    -- Messages deleted with their conversation find it gone, and leave the raise to
    -- the conversation's own trigger.
    IF owner IS NOT NULL THEN
        PERFORM raise_revision(owner);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION raise_revision_of_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM raise_revision(NEW.id);
    RETURN NULL;
END
$$;

-- Raised at commit (deferred), after every other lock the transaction takes: a
-- transaction waiting for a slot holds nothing the slot's holder still needs.
DROP TRIGGER conversations_raise_revision ON conversations;
CREATE CONSTRAINT TRIGGER conversations_raise_revision
    AFTER INSERT OR UPDATE OR DELETE ON conversations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_conversation_owner();

DROP TRIGGER messages_raise_revision ON messages;
CREATE CONSTRAINT TRIGGER messages_raise_revision
    AFTER INSERT OR UPDATE OR DELETE ON messages
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_message_owner();

-- Profile, address and password changes are the user's writes too: the revision
-- versions all of them.
CREATE CONSTRAINT TRIGGER users_raise_revision
    AFTER UPDATE ON users
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION raise_revision_of_user();

ALTER TABLE users DROP COLUMN revision;
