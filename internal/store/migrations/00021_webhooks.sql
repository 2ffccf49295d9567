-- Signed webhooks: an Organization's endpoints, the deliveries of its audit
-- entries to them, and how far the dispatcher has fanned out each audit
-- chain.

-- +goose Up

-- An endpoint receives the audit entries of its Organization whose event
-- type matches one of events (a JSON array of types and prefixes such as
-- "api_key.*"). organization_id is NULL for the one server-wide endpoint
-- (--webhook-url), which receives every Organization's matching entries.
-- The signing secrets must be usable to sign, so they are stored as they
-- are (see docs/security.md); previous_secret signs beside secret until
-- previous_secret_until, after a rotation. An endpoint is enabled while
-- disabled_at is NULL; failing_since is the first failure since its last
-- success.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations (id),
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    disabled_at BIGINT,
    disabled_reason TEXT,
    failing_since BIGINT,
    deleted_at BIGINT
);
CREATE INDEX webhook_endpoints_organization ON webhook_endpoints (organization_id, created_at);

-- One row per audit chain (scope) the dispatcher follows: every entry of
-- the chain up to seq has its deliveries.
CREATE TABLE webhook_cursors (
    scope TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

-- A delivery is one event for one endpoint; its id is the webhook-id of
-- every attempt, and payload the body, fixed when it is made and erased
-- when the delivery is finished. status is pending, delivered or failed;
-- finished deliveries are kept for the delivery log for 30 days.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    last_attempt_at BIGINT,
    last_http_status INTEGER,
    last_latency_ms BIGINT,
    last_error TEXT,
    finished_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_cursors;
DROP TABLE webhook_endpoints;
