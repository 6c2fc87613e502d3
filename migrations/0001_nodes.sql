-- Settings shared by every server replica (the join token), and the storage nodes.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE nodes (
    node_id        TEXT PRIMARY KEY,          -- 64 hex digits: BLAKE3 of the public key
    public_key     TEXT NOT NULL,             -- 64 hex digits
    url            TEXT NOT NULL,
    zone           TEXT NOT NULL,
    version        TEXT NOT NULL,
    capacity       BIGINT NOT NULL,
    used           BIGINT NOT NULL DEFAULT 0,
    free_disk      BIGINT NOT NULL DEFAULT 0,
    shards         BIGINT NOT NULL DEFAULT 0,
    quarantined    BIGINT NOT NULL DEFAULT 0,
    ingress_bytes  BIGINT NOT NULL DEFAULT 0,
    egress_bytes   BIGINT NOT NULL DEFAULT 0,
    uptime_secs    BIGINT NOT NULL DEFAULT 0,
    scrub          TEXT NOT NULL DEFAULT '{}', -- the worker's scrub report, JSON
    registered_at  BIGINT NOT NULL,           -- unix seconds, server clock
    last_seen      BIGINT NOT NULL,           -- unix seconds, server clock
    last_sent_at   BIGINT NOT NULL DEFAULT 0  -- the worker's clock, for replay checks
);

-- At most one sample per node per minute, for the dashboard's charts.
CREATE TABLE node_samples (
    node_id        TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    at             BIGINT NOT NULL,
    capacity       BIGINT NOT NULL,
    used           BIGINT NOT NULL,
    shards         BIGINT NOT NULL,
    ingress_bytes  BIGINT NOT NULL,
    egress_bytes   BIGINT NOT NULL,
    uptime_secs    BIGINT NOT NULL,
    PRIMARY KEY (node_id, at)
);

-- Shards a worker found corrupt and quarantined; repair reads these.
CREATE TABLE corrupt_reports (
    node_id      TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    shard_id     TEXT NOT NULL,
    reported_at  BIGINT NOT NULL,
    PRIMARY KEY (node_id, shard_id)
);
