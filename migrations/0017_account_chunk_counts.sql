-- The durability status counts chunks by health from the damaged ones (found from the shards of
-- unhealthy workers and reported losses) and the total kept here per account (one more chunk
-- count and one fewer in the transactions that add and delete a file): grouping every shard
-- stored by its chunk on each request grew with the network.
ALTER TABLE accounts ADD COLUMN chunk_count BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET chunk_count = (SELECT COALESCE(SUM(chunk_count), 0) FROM files WHERE files.account_id = accounts.id);
