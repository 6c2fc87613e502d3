-- A worker's shards by node and shard id, with their sizes: the lookups of one shard on one
-- worker (a deleted shard placed again, a loss reported, an orphan checked) are index probes,
-- not walks of every shard on the worker, and the per-worker counts and sums (audits sized by
-- what a worker holds, storage rewards) read the index alone. Its prefix serves what the
-- node-only index did.
CREATE INDEX file_shards_by_node_shard ON file_shards (node_id, shard_id, size);
DROP INDEX file_shards_by_node;
