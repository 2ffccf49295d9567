-- Workspace API keys, their expiration policies, and idempotent retries.

-- +goose Up
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT,
    -- name_folded is the name in lower case without accents, for search.
    name_folded TEXT NOT NULL DEFAULT '',
    key_hash TEXT NOT NULL UNIQUE,
    hidden_key TEXT NOT NULL,
    last4_folded TEXT NOT NULL,
    product TEXT NOT NULL DEFAULT 'API',
    created_by TEXT,
    created_at BIGINT NOT NULL,
    -- The key stops working at expires_at (the start of its expiration date, UTC).
    expires_at BIGINT,
    -- After a rotation the previous secret works until previous_expires_at.
    previous_key_hash TEXT UNIQUE,
    previous_expires_at BIGINT,
    last_used_at BIGINT,
    deleted_at BIGINT,
    -- Expiry reminders already sent: 7 and 1 days before.
    notified_days INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_organization ON api_keys (organization_id, created_at, id);
CREATE INDEX api_keys_expiry ON api_keys (expires_at) WHERE deleted_at IS NULL AND expires_at IS NOT NULL;

-- The longest an API key may live, in days: for the Organization
-- (workspace_id '') and, only shorter, per Workspace.
CREATE TABLE api_key_policies (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT NOT NULL DEFAULT '',
    max_expiration_days INTEGER NOT NULL CHECK (max_expiration_days > 0),
    PRIMARY KEY (organization_id, workspace_id)
);

-- A retried request with the same Idempotency-Key gets the first answer.
-- The answer is sealed with a key derived from the Idempotency-Key, which
-- only the client holds: a secret in it cannot be read from the database.
CREATE TABLE idempotency_records (
    organization_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, scope, key_hash)
);
CREATE INDEX idempotency_records_created ON idempotency_records (created_at);

-- +goose Down
DROP TABLE idempotency_records;
DROP TABLE api_key_policies;
DROP TABLE api_keys;
