-- The process of each usage intent: a random id per start, whose session
-- advisory lock the process holds on PostgreSQL while it lives. Another
-- process that can take that lock knows the intent's process is gone, and
-- settles it at its reservation. Intents written before had none (0):
-- nobody holds that lock, so the first sweep settles them.

-- +goose Up
ALTER TABLE usage_intents ADD COLUMN process_id BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE usage_intents DROP COLUMN process_id;
