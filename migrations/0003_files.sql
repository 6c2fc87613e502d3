-- Files, uploads in progress, shares, shards waiting for garbage collection, and job leases.
-- The server keeps only what it cannot read: signed manifests, sealed metadata, wrapped keys.

-- An upload between "begin" and "commit". Its put tokens are listed so a commit can check that
-- every receipt answers a token issued for this upload, to that worker.
CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,            -- 32 hex digits, random
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    file_id        TEXT NOT NULL UNIQUE,        -- chosen by the client, 32 hex digits
    size           BIGINT NOT NULL,             -- plaintext bytes declared
    data_shards    BIGINT NOT NULL,
    parity_shards  BIGINT NOT NULL,
    chunk_size     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX uploads_by_account ON uploads (account_id);

CREATE TABLE upload_tokens (
    serial      TEXT PRIMARY KEY,               -- 32 hex digits
    upload_id   TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    budget      BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX upload_tokens_by_upload ON upload_tokens (upload_id);

CREATE TABLE files (
    id             TEXT PRIMARY KEY,            -- the manifest's file id, 32 hex digits
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    manifest       TEXT NOT NULL,               -- owner-signed manifest ("DKMF"), base64url
    metadata       TEXT NOT NULL,               -- sealed name, type and size ("DKMD"), base64url
    wrapped_key    TEXT NOT NULL,               -- file key wrapped under the master key ("DKWK")
    size           BIGINT NOT NULL,             -- plaintext bytes (the manifest says so anyway)
    stored_bytes   BIGINT NOT NULL,             -- bytes of all shards: what the quota counts
    data_shards    BIGINT NOT NULL,
    parity_shards  BIGINT NOT NULL,
    chunk_count    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX files_by_account ON files (account_id, created_at);

-- Where every shard of every committed file lives. Only shards a worker signed a receipt for.
CREATE TABLE file_shards (
    file_id   TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    chunk     BIGINT NOT NULL,
    idx       BIGINT NOT NULL,
    shard_id  TEXT NOT NULL,
    node_id   TEXT NOT NULL REFERENCES nodes (node_id),
    size      BIGINT NOT NULL,
    PRIMARY KEY (file_id, chunk, idx)
);
CREATE INDEX file_shards_by_node ON file_shards (node_id);

-- Shards of deleted files, to be deleted from their workers after a grace period.
CREATE TABLE gc_shards (
    node_id     TEXT NOT NULL,
    shard_id    TEXT NOT NULL,
    deleted_at  BIGINT NOT NULL,
    PRIMARY KEY (node_id, shard_id)
);

-- Share links. The key is in the link's #fragment and never here. Shares outlive their file's
-- deletion as revoked rows, so an old link says "revoked" rather than "no such link".
CREATE TABLE shares (
    id             TEXT PRIMARY KEY,            -- 22 base64url characters, random
    file_id        TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    max_downloads  BIGINT,                      -- NULL: no limit
    downloads      BIGINT NOT NULL DEFAULT 0,
    password_hash  TEXT,                        -- Argon2id of the client's password proof
    revoked_at     BIGINT
);
CREATE INDEX shares_by_account ON shares (account_id);

-- One row per background job: the replica holding an unexpired lease runs it.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
