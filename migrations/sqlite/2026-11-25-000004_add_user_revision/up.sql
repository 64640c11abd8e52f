-- Raised in the same transaction as every change to the user's conversations or
-- messages, so that an unchanged revision means unchanged data (the API reuses its
-- rendering of the conversation list while it stays).
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
