-- The product of the key each usage event was made with (API, Mistral
-- Code, Vibe), so that what is derived from usage (the coding analytics)
-- can tell coding products apart.

-- +goose Up
ALTER TABLE usage_events ADD COLUMN product TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE usage_events DROP COLUMN product;
