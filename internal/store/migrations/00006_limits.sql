-- Spend caps and rate limits, enforced by the gateway.

-- +goose Up
-- Monthly spend caps, in whole units of the billing currency; NULL is none.
ALTER TABLE organizations ADD COLUMN spend_limit BIGINT;
ALTER TABLE workspaces ADD COLUMN spend_limit BIGINT;

-- Rate limits of an Organization (workspace_id '') or a Workspace: the
-- request rate on the row without a model (model ''), token limits on a
-- model's row. NULL is no limit.
CREATE TABLE rate_limits (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    requests_per_second BIGINT,
    tokens_per_minute BIGINT,
    tokens_per_month BIGINT,
    PRIMARY KEY (organization_id, workspace_id, model)
);

-- +goose Down
DROP TABLE rate_limits;
ALTER TABLE workspaces DROP COLUMN spend_limit;
ALTER TABLE organizations DROP COLUMN spend_limit;
