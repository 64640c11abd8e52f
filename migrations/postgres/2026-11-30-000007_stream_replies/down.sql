-- The indexes first: SQLite refuses to drop a column an index uses.
DROP INDEX messages_streaming_heard_at;
DROP INDEX messages_one_streaming_reply;
ALTER TABLE messages DROP COLUMN heard_at;
ALTER TABLE messages DROP COLUMN reply_ends;
