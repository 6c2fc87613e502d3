-- Pages of an account's file list are read by keyset, newest first and ties by id
-- (`created_at < $c OR (created_at = $c AND id > $id)`): the index carries the id too, so a page
-- deep in a long list is found in the index rather than after sorting every file of that second.
DROP INDEX files_by_account;
CREATE INDEX files_by_account ON files (account_id, created_at, id);
