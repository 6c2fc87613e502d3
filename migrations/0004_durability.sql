-- Durability and rewards: reputation, audits in containment, what workers hold, the ledger.
-- Scores are fixed-point millionths (1,000,000 = 1.0) in BIGINT, like every other number here.

-- Reputation, on the node row: exponentially weighted audit and online scores, and the state
-- they lead to ('active', 'suspended': no new shards, 'disqualified': its shards count as lost).
ALTER TABLE nodes ADD COLUMN audit_score BIGINT NOT NULL DEFAULT 1000000;
ALTER TABLE nodes ADD COLUMN online_score BIGINT NOT NULL DEFAULT 1000000;
ALTER TABLE nodes ADD COLUMN audits_passed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN audits_failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE nodes ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN state_since BIGINT NOT NULL DEFAULT 0;
-- When the online score was last updated (it decays per elapsed interval, not per call).
ALTER TABLE nodes ADD COLUMN online_checked_at BIGINT NOT NULL DEFAULT 0;
-- Storage rewards accrue from here to the next rewards pass.
ALTER TABLE nodes ADD COLUMN accrued_until BIGINT NOT NULL DEFAULT 0;

-- When each placed shard was last audited: the auditor takes the least recently audited first,
-- so every shard is challenged once per audit window.
ALTER TABLE file_shards ADD COLUMN audited_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX file_shards_by_audit ON file_shards (node_id, audited_at);

-- The audit score at each sample, for the dashboard's trend.
ALTER TABLE node_samples ADD COLUMN audit_score BIGINT NOT NULL DEFAULT 1000000;

-- Why a shard stopped counting as healthy: 'corrupt' (the worker quarantined it), 'missing'
-- (absent from the worker's own listing) or 'audit' (it failed an audit).
ALTER TABLE corrupt_reports ADD COLUMN reason TEXT NOT NULL DEFAULT 'corrupt';

-- A shard whose audit timed out: re-challenged until it answers or runs out of attempts.
CREATE TABLE audit_containment (
    node_id     TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    shard_id    TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    since       BIGINT NOT NULL,
    PRIMARY KEY (node_id, shard_id)
);

-- Every audit, kept for the dashboard's pass rate and for the tests' counts.
CREATE TABLE audits (
    node_id   TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    at        BIGINT NOT NULL,
    shard_id  TEXT NOT NULL,
    outcome   TEXT NOT NULL             -- 'pass', 'fail', 'timeout'
);
CREATE INDEX audits_by_node ON audits (node_id, at);

-- Shards a worker listed that no file holds there; removed once still orphaned after a grace.
CREATE TABLE orphan_candidates (
    node_id     TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    shard_id    TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    PRIMARY KEY (node_id, shard_id)
);

-- Get tokens issued, and the bytes their worker says it served under each (capped by the
-- budget). Paid once, after the token expired, when the figure can no longer grow.
CREATE TABLE egress_claims (
    serial      TEXT PRIMARY KEY,
    node_id     TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    budget      BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    bytes       BIGINT NOT NULL DEFAULT 0,
    paid        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX egress_claims_by_expiry ON egress_claims (paid, expires_at);

-- The operators' ledger: append-only, each entry carrying the hash of the one before.
CREATE TABLE ledger (
    seq           BIGINT PRIMARY KEY,
    node_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,        -- 'storage' (quantity: byte-seconds) or 'egress' (bytes)
    period_start  BIGINT NOT NULL,
    period_end    BIGINT NOT NULL,
    quantity      BIGINT NOT NULL,
    amount        BIGINT NOT NULL,      -- picodollars at the rates in server/src/rewards.rs
    reference     TEXT NOT NULL,        -- the token serial of an egress entry, else ''
    created_at    BIGINT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX ledger_by_node ON ledger (node_id, period_end);
