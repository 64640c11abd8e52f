DROP INDEX messages_conversation_id;
CREATE INDEX messages_conversation_order ON messages (conversation_id, created_at, id);
