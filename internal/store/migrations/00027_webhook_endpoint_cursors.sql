-- Webhooks are delivered straight from the audit log: each endpoint follows
-- its Organization's audit chain from its own cursor (the server-wide
-- endpoint one cursor per Organization's chain), and a delivery's row is
-- written once it has been attempted, for the delivery log, and kept
-- pending only when it must be retried. The fan-out's cursors per chain
-- (webhook_cursors) and its rows per delivery before the first attempt
-- are gone: they cost three row writes a delivery.

-- +goose Up

-- Every entry of scope up to seq has been attempted for the endpoint (or
-- did not match its events). claimed_until, while in the future, is the
-- lease of the one process delivering the entries past seq. A disabled
-- endpoint's cursor stays where it is; enabling the endpoint moves it to
-- the chain's head.
CREATE TABLE webhook_endpoint_cursors (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    scope TEXT NOT NULL,
    seq BIGINT NOT NULL,
    claimed_until BIGINT,
    PRIMARY KEY (endpoint_id, scope)
);

-- The endpoints take up where the fan-out had got to: the deliveries
-- before it are in webhook_deliveries already.
INSERT INTO webhook_endpoint_cursors (endpoint_id, scope, seq)
    SELECT e.id, c.scope, c.seq FROM webhook_endpoints e JOIN webhook_cursors c ON c.scope = 'org:' || e.organization_id
    WHERE e.deleted_at IS NULL;
INSERT INTO webhook_endpoint_cursors (endpoint_id, scope, seq)
    SELECT e.id, c.scope, c.seq FROM webhook_endpoints e JOIN webhook_cursors c ON c.scope LIKE 'org:%'
    WHERE e.organization_id IS NULL AND e.deleted_at IS NULL;
DROP TABLE webhook_cursors;

-- A delivered event's row is the one write it costs, and each of its
-- indexes another: the delivery log is pruned through the index of each
-- endpoint's deliveries by time instead of an index of its own.
DROP INDEX webhook_deliveries_finished;

-- +goose Down
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE webhook_cursors (
    scope TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO webhook_cursors (scope, seq) SELECT scope, MIN(seq) FROM webhook_endpoint_cursors GROUP BY scope;
DROP TABLE webhook_endpoint_cursors;
