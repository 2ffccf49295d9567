-- +goose Up
-- On PostgreSQL a change's audit entries are inserted unlinked, without
-- their position in the chain and their hashes, and a linker gives them
-- both after the commit (internal/audit/link.go): the transaction no
-- longer holds its chain's head through its commit, so the writes of one
-- Organization commit side by side. SQLite, whose one writer commits one
-- transaction at a time anyway, still links at the commit.
POSTGRES_ONLY ALTER TABLE audit_log ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL;
POSTGRES_ONLY CREATE INDEX audit_log_unlinked ON audit_log (scope, log_id) WHERE seq IS NULL;

-- +goose Down
-- Link the pending entries (steward audit verify does) before going down.
POSTGRES_ONLY DROP INDEX audit_log_unlinked;
POSTGRES_ONLY ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
