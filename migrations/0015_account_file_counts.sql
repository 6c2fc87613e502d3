-- The file list's total is read from a counter kept on the account (one more and one fewer in the
-- transactions that add and delete a file), not counted per page: counting an account's files
-- grows with the account.
ALTER TABLE accounts ADD COLUMN file_count BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET file_count = (SELECT COUNT(*) FROM files WHERE files.account_id = accounts.id);
