-- Devices an account has logged in from: a long-lived secret (cookie or header), stored by its
-- BLAKE3 hash. Log-in attempts from a known device are counted apart from everyone else's, so
-- strangers' wrong guesses cannot lock the owner out.
CREATE TABLE known_devices (
    id_hash       TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL
);
CREATE INDEX known_devices_by_account ON known_devices (account_id);
CREATE INDEX known_devices_by_use ON known_devices (last_used_at);
