-- A conversation's messages are listed, and paged backwards, in the order they were
-- stored: by id. Appends to one conversation are serialised by the update of its row,
-- so ids follow time there even when the clocks of several instances disagree.
DROP INDEX messages_conversation_order;
CREATE INDEX messages_conversation_id ON messages (conversation_id, id);
