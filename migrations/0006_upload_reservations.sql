-- Uploads hold storage while they are open, and their put tokens can be withdrawn.
--
-- An upload reserves the bytes it may store (its shards at their largest) at begin; the account's
-- `reserved_bytes` is the sum over its open uploads, and begin refuses what `used + reserved`
-- would push past the quota. Commit, cancel and expiry give the reservation back.
ALTER TABLE uploads ADD COLUMN reserved_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN reserved_bytes BIGINT NOT NULL DEFAULT 0;

-- Put tokens of cancelled or expired uploads, until the tokens themselves expire. Each worker
-- fetches its own in heartbeat answers (newest `revoked_at` it holds onwards), refuses further
-- puts under them and deletes the shards they stored.
CREATE TABLE revoked_tokens (
    serial      TEXT PRIMARY KEY,               -- 32 hex digits
    node_id     TEXT NOT NULL,
    revoked_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_node ON revoked_tokens (node_id, revoked_at);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
