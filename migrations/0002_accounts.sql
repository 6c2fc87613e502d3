-- Zero-knowledge accounts: the server keeps what the client derived and wrapped, never a password
-- or a key that opens anything. Binary values are base64url text (the same on both dialects).
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,       -- 32 hex digits, random
    email             TEXT NOT NULL UNIQUE,   -- trimmed and lower-cased
    kdf_setup         TEXT NOT NULL,          -- the client's Argon2 salt and parameters ("DKKP")
    auth_hash         TEXT NOT NULL,          -- server-side Argon2id of the client's auth key
    wrapped_identity  TEXT NOT NULL,          -- identity key wrapped under the master key ("DKWK")
    public_key        TEXT NOT NULL,          -- identity public key, hex
    quota_bytes       BIGINT NOT NULL,
    used_bytes        BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL
);

-- Browser sessions and CLI tokens are stored by the BLAKE3 hash of their secret only.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE api_tokens (
    id_hash     TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Failed log-ins per account ("email:…") and per client address ("addr:…") in a sliding window.
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL
);
