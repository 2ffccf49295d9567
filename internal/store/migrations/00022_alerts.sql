-- Alerts: each fires once. A row is inserted in the transaction that writes
-- the alert's audit entry and e-mails, under a primary key naming the alert
-- (its event type, what it is about, its period and threshold), so that
-- several processes evaluating at once fire it once.

-- +goose Up
CREATE TABLE alerts_fired (
    organization_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- subject is what the alert is about: the Workspace ('' for the
    -- Organization), with the model after a slash for token limits, or an
    -- Admin API key's id.
    subject TEXT NOT NULL,
    -- period is the calendar month (YYYY-MM, in the Organization's time
    -- zone) of limit alerts, the instant of the last use of an unused key.
    period TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, event_type, subject, period, threshold)
);

-- The evaluator visits only the Organizations with a monthly limit.
CREATE INDEX organizations_spend_limit ON organizations (id) WHERE spend_limit IS NOT NULL;
CREATE INDEX workspaces_spend_limit ON workspaces (organization_id) WHERE spend_limit IS NOT NULL;
CREATE INDEX rate_limits_tokens_per_month ON rate_limits (organization_id) WHERE tokens_per_month IS NOT NULL;

-- +goose Down
DROP INDEX rate_limits_tokens_per_month;
DROP INDEX workspaces_spend_limit;
DROP INDEX organizations_spend_limit;
DROP TABLE alerts_fired;
