-- Share downloads count when they are done, not when they start.
--
-- Starting a download of a link reserves one of its downloads (`shares.downloads` counts
-- reserved and finished ones alike, so the limit holds under races). The reservation stays
-- `open` while the download's get tokens last; the recipient can continue it with fresh tokens
-- after a failure. It ends `completed` when the recipient's client says so, or, once its tokens
-- have expired and the workers have claimed their bytes, `fetched` when the workers served at
-- least `needed` bytes under its tokens (so a client that never reports still uses a download),
-- else `lapsed`, and the reservation is given back.
CREATE TABLE share_downloads (
    id_hash     TEXT PRIMARY KEY,               -- BLAKE3 of the download id the recipient holds
    share_id    TEXT NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,                  -- 16 hex digits: the first 8 bytes of its get tokens' serials
    needed      BIGINT NOT NULL,                -- bytes served that count it as fetched
    state       TEXT NOT NULL,                  -- open | completed | fetched | lapsed
    started_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,                -- when its newest get tokens expire
    continued   BIGINT NOT NULL DEFAULT 0       -- how many times fresh tokens were issued
);
CREATE INDEX share_downloads_open ON share_downloads (share_id, state, expires_at);
