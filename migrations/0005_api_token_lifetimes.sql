-- API tokens end: each has an expiry. Tokens made before this migration get the default
-- lifetime (90 days) counted from their creation.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE api_tokens SET expires_at = created_at + 7776000;
CREATE INDEX api_tokens_by_account ON api_tokens (account_id);
