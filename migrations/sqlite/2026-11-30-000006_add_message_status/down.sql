ALTER TABLE messages DROP COLUMN status;
