-- Overruns: a usage event whose request used more than it reserved (its
-- model server reported more, or streamed beyond max_tokens and was cut,
-- or a check was reported beyond its reservation) is marked, and the
-- rollups count such requests, so that reports show where spend caps were
-- outrun. Existing events and rows had none.

-- +goose Up
ALTER TABLE usage_events ADD COLUMN overrun BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE usage_hourly ADD COLUMN overrun_requests BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN overrun_requests BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE usage_daily DROP COLUMN overrun_requests;
ALTER TABLE usage_hourly DROP COLUMN overrun_requests;
ALTER TABLE usage_events DROP COLUMN overrun;
