-- +goose Up
-- The change feed across processes (internal/store/feed.go): each
-- transaction's changes, for the other processes to read once it commits,
-- instead of a pg_notify in the transaction, which held one lock of the
-- whole server through every notifying commit's WAL flush. xid is the
-- writing transaction's, by which a reader finds the rows committed since
-- its last read's snapshot.
POSTGRES_ONLY CREATE TABLE change_log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(), origin TEXT NOT NULL, topic TEXT NOT NULL, organization_id TEXT NOT NULL, object_id TEXT NOT NULL, created_at BIGINT NOT NULL);
POSTGRES_ONLY CREATE INDEX change_log_xid ON change_log (xid);

-- +goose Down
POSTGRES_ONLY DROP TABLE change_log;
