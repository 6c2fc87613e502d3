-- Folders: an account's tree. The server keeps each folder's parent and its name sealed under a
-- key of the folder's own (wrapped under the owner's identity): it lists a folder's children by
-- id and never reads a name. Files name their folder (none: the top of the tree); an upload
-- remembers the folder it was begun for, which its commit files it in.
CREATE TABLE folders (
    id          TEXT PRIMARY KEY,               -- 32 hex digits, chosen by the client
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    parent_id   TEXT REFERENCES folders (id),    -- NULL: at the top
    metadata    TEXT NOT NULL,                   -- sealed name ("DKMD"), base64url
    wrapped_key TEXT NOT NULL,                   -- the folder key ("DKWK", purpose folder), base64url
    created_at  BIGINT NOT NULL
);
CREATE INDEX folders_by_parent ON folders (account_id, parent_id);
ALTER TABLE files ADD COLUMN folder_id TEXT REFERENCES folders (id);
CREATE INDEX files_by_folder ON files (account_id, folder_id, created_at, id);
ALTER TABLE uploads ADD COLUMN folder_id TEXT;
