-- Recovery keys: the BLAKE3 hash of the recovery auth key (hex) and the identity key wrapped under
-- the recovery master key (base64url). Both empty for accounts without one.
ALTER TABLE accounts ADD COLUMN recovery_hash TEXT;
ALTER TABLE accounts ADD COLUMN recovery_wrapped_identity TEXT;
