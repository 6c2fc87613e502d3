-- Egress is paid on the readers' signed orders, not on the workers' own counts: each claim keeps
-- the order key its get token named (hex; '' when the token named none, and nothing under it is
-- paid), to verify the orders that raise `bytes` (what is paid). `served` is the worker's own
-- count (capped by the budget too): not paid, only what judges whether a share link's download
-- that was never reported fetched the file.
ALTER TABLE egress_claims ADD COLUMN order_key TEXT NOT NULL DEFAULT '';
ALTER TABLE egress_claims ADD COLUMN served BIGINT NOT NULL DEFAULT 0;
UPDATE egress_claims SET served = bytes;
