-- Hot files at the edge.
--
-- Extra copies of the shards of files read often, on the best-connected workers. Shards are
-- content-addressed, so a copy is one more place a reader may fetch the same shard from, under
-- the same get tokens: no re-encoding, no new signature. Copies never count toward a chunk's
-- redundancy (repair, audits, placement and durability read `file_shards` only); the holdings
-- comparison expects them on their worker, and a missing one is forgotten, not a loss. They are
-- dropped when the file cools down or is deleted (their shards then go to `gc_shards`).
CREATE TABLE hot_copies (
    file_id     TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    chunk       BIGINT NOT NULL,
    idx         BIGINT NOT NULL,
    shard_id    TEXT NOT NULL,
    node_id     TEXT NOT NULL REFERENCES nodes (node_id),
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (file_id, chunk, idx, node_id)
);
CREATE INDEX hot_copies_by_node ON hot_copies (node_id, shard_id);
