-- A reply streams into its row, so that any instance sharing the database can follow
-- it, resume it after a delta, and tell when its writer died. While the status is
-- 'streaming' (NULL otherwise):
-- reply_ends: where each delta of the text so far ends, in bytes, comma-separated
--     decimal ('3,7,12'), checkpointed with the text, so a reader resumes without a gap
--     or a repeat;
-- heard_at: when its writer last checkpointed or said it was alive; a reply silent
--     for long is marked 'interrupted' by the sweep.
ALTER TABLE messages ADD COLUMN reply_ends TEXT NULL;
ALTER TABLE messages ADD COLUMN heard_at TIMESTAMP NULL;
-- One reply at a time per conversation, kept by the database for every instance: a
-- second one is a unique violation, and the exchange that tried it is rolled back.
CREATE UNIQUE INDEX messages_one_streaming_reply ON messages (conversation_id)
    WHERE status = 'streaming';
-- The sweep for dead writers reads the few streaming replies only.
CREATE INDEX messages_streaming_heard_at ON messages (heard_at)
    WHERE status = 'streaming';
