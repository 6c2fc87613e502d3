-- A restripe is an upload that re-encodes a stored file at the redundancy the policy gives now
-- (its owner's client fetches the sealed chunks, encodes them at the new (k, m) and signs the new
-- manifest); its commit replaces the file's manifest and shards instead of adding a file.
ALTER TABLE uploads ADD COLUMN restripe BIGINT NOT NULL DEFAULT 0;
