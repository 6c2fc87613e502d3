-- Uploads that survive a failing worker.
--
-- The server keeps each upload's plan: for every shard of every chunk, the slot (the put token's
-- place in the plan's `nodes`) it goes to, as base64url of little-endian u16s, chunk after chunk.
-- When a worker fails mid-upload the client asks for its shards to be placed again: the server
-- re-places them under the same failure-domain rules, counting the chunk's other workers, issues
-- put tokens for the workers chosen (new slots) and stores the amended plan. `replans` counts
-- those requests (an upload may make only so many) and guards against two racing ones.
ALTER TABLE uploads ADD COLUMN placement TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN replans BIGINT NOT NULL DEFAULT 0;
ALTER TABLE upload_tokens ADD COLUMN slot BIGINT NOT NULL DEFAULT 0;
