-- An Organization's time zone, in which its calendar months (spend caps,
-- monthly token limits, GET /usage) start; and the request id of each usage
-- event, the id its answer carried in x-request-id.

-- +goose Up
-- An IANA name, such as Europe/Paris; checked by Steward when set.
ALTER TABLE organizations ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
-- The request id may come from the client: it correlates, it does not
-- identify (id is the event's idempotency id, made by Steward).
ALTER TABLE usage_events ADD COLUMN request_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE usage_events DROP COLUMN request_id;
ALTER TABLE organizations DROP COLUMN time_zone;
