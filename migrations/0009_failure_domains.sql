-- Who runs each node: a failure domain beside the zone. Empty means the node is its own operator.
ALTER TABLE nodes ADD COLUMN operator TEXT NOT NULL DEFAULT '';
-- When a placement row last got its node (commit or repair), so a holdings listing taken before
-- a shard arrived is not read as the shard gone missing.
ALTER TABLE file_shards ADD COLUMN placed_at BIGINT NOT NULL DEFAULT 0;
