-- An Organization's live keys, newest first, for the key list: deleted_at
-- in the index lets a page far from the start step over index entries
-- only, never over the rows (the index covers the page's choice).

-- +goose Up
CREATE INDEX api_keys_live ON api_keys (organization_id, deleted_at, created_at, id);
DROP INDEX api_keys_organization;

-- +goose Down
CREATE INDEX api_keys_organization ON api_keys (organization_id, created_at, id);
DROP INDEX api_keys_live;
