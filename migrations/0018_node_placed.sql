-- Shards and bytes placed on each node, for the rebalancer (which summed every shard stored,
-- per node, at each pass). The transactions that place, move and delete shards append their
-- changes to `node_placed_changes` (append-only: concurrent commits placing on the same nodes
-- do not wait on each other's rows), and readers fold them into `node_placed` first.
CREATE TABLE node_placed (
    node_id TEXT PRIMARY KEY,
    shards  BIGINT NOT NULL DEFAULT 0,
    bytes   BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE node_placed_changes (
    id      TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    shards  BIGINT NOT NULL,
    bytes   BIGINT NOT NULL
);
INSERT INTO node_placed (node_id, shards, bytes)
    SELECT node_id, COUNT(*), COALESCE(SUM(size), 0) FROM file_shards GROUP BY node_id;
