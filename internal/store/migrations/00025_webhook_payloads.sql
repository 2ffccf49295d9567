-- The body of an audit entry's event is kept once, for all the endpoints
-- that receive it, rather than once in each delivery: with ten endpoints
-- that wrote ten copies, and every change of a delivery's row (its claim,
-- its outcome) copied its body again on PostgreSQL. A delivery names its
-- body by payload_id; a test event's delivery still carries its own
-- (payload). A body is deleted once no pending delivery names it.

-- +goose Up
CREATE TABLE webhook_payloads (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
ALTER TABLE webhook_deliveries ADD COLUMN payload_id TEXT REFERENCES webhook_payloads (id);
CREATE INDEX webhook_deliveries_payload ON webhook_deliveries (payload_id) WHERE status = 'pending';

-- +goose Down
DROP INDEX webhook_deliveries_payload;
ALTER TABLE webhook_deliveries DROP COLUMN payload_id;
DROP TABLE webhook_payloads;
