-- Usage: one row per model request, and the hourly and daily rollups that
-- reports and spend limits read. Rollup buckets start on UTC hours and UTC
-- days, as BIGINT microseconds like every other time. The rollups are kept
-- by the transaction that inserts the raw rows, counting only the rows that
-- were new, so they always equal the sums of usage_events.

-- +goose Up

-- id is the event's idempotency id (the gateway's request id): a repeated
-- id is ignored. No column references the directory: usage outlives the
-- keys, users and Workspaces it names, and an event must never be refused
-- because of them.
CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL CHECK (input_tokens >= 0),
    output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),
    -- cost is in micro-units of currency.
    cost BIGINT NOT NULL CHECK (cost >= 0),
    currency TEXT NOT NULL,
    -- estimated is set when the model server did not report the usage.
    estimated BOOLEAN NOT NULL,
    endpoint TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX usage_events_organization ON usage_events (organization_id, occurred_at);

-- The key starts with the Organization and the bucket, so that a report of
-- one Organization over a range reads one contiguous part of it.
CREATE TABLE usage_hourly (
    organization_id TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost BIGINT NOT NULL,
    estimated_requests BIGINT NOT NULL,
    PRIMARY KEY (organization_id, bucket_start, workspace_id, key_id, user_id, model)
);

CREATE TABLE usage_daily (
    organization_id TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost BIGINT NOT NULL,
    estimated_requests BIGINT NOT NULL,
    PRIMARY KEY (organization_id, bucket_start, workspace_id, key_id, user_id, model)
);

-- +goose Down
DROP TABLE usage_daily;
DROP TABLE usage_hourly;
DROP TABLE usage_events;
