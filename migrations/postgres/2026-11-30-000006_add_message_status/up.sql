-- Whether a message is whole: user messages always are; a bot's reply may have broken
-- off ('failed') or, once replies stream, be on its way ('streaming') or stopped
-- ('interrupted'). Every message stored before this is whole.
ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'
    CHECK (status IN ('complete', 'streaming', 'interrupted', 'failed'));
